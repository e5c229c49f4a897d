package server

import (
	"time"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
)

// The server answers in api's types, converted here from the manager's:
// the manager's types are the domain's, api's are the OpenAPI document's.

// unixMillis returns t in Unix milliseconds, 0 for the zero Time.
func unixMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func wireThread(t manager.Thread) api.Thread {
	return api.Thread{
		ID: t.ID, RolloutPath: t.RolloutPath,
		CreatedAt: unixMillis(t.CreatedAt), UpdatedAt: unixMillis(t.UpdatedAt),
		Cwd: t.Cwd, Source: t.Source, Originator: t.Originator, CLIVersion: t.CLIVersion, ModelProvider: t.ModelProvider,
		GitCommit: t.Git.CommitHash, GitBranch: t.Git.Branch, GitOrigin: t.Git.RepositoryURL,
		Name: t.Name, Preview: t.Preview, Archived: t.Archived, ArchivedAt: unixMillis(t.ArchivedAt),
		ParentID: t.ParentID, ForkUserMessage: t.ForkUserMessage, ForkOffset: t.ForkOffset,
		LineCount: t.LineCount, UserMessageCount: t.UserMessageCount, IndexedSize: t.IndexedSize,
		HistorySize: t.HistorySize(), HistoryMode: t.HistoryMode, BaseID: t.BaseID, BaseSize: t.BaseSize,
	}
}

func wireThreads(ts []manager.Thread) []api.Thread {
	out := make([]api.Thread, len(ts))
	for i, t := range ts {
		out[i] = wireThread(t)
	}
	return out
}

func wireRelatives(rels []manager.Relative) []api.Relative {
	out := make([]api.Relative, len(rels))
	for i, r := range rels {
		out[i] = api.Relative{ID: r.ID, Depth: r.Depth}
		if r.Thread != nil {
			t := wireThread(*r.Thread)
			out[i].Thread = &t
		}
	}
	return out
}

func wireUserMessages(msgs []manager.UserMessage) []api.UserMessage {
	out := make([]api.UserMessage, len(msgs))
	for i, m := range msgs {
		out[i] = api.UserMessage(m)
	}
	return out
}

func wireAppendResult(res manager.AppendResult) api.AppendResult {
	offsets := res.Offsets
	if offsets == nil {
		offsets = []int64{}
	}
	return api.AppendResult{Offsets: offsets, Thread: wireThread(res.Thread)}
}

func wireSearchPage(p manager.SearchPage) api.SearchPage {
	hits := make([]api.SearchHit, len(p.Hits))
	for i, h := range p.Hits {
		hits[i] = api.SearchHit(h)
	}
	return api.SearchPage{Hits: hits, NextCursor: p.NextCursor}
}

func wireEvent(e manager.Event) api.Event {
	w := api.Event{Seq: e.Seq, Type: string(e.Type), ThreadID: e.ThreadID, Size: e.Size, Offsets: e.Offsets}
	if e.Thread != nil {
		t := wireThread(*e.Thread)
		w.Thread = &t
	}
	return w
}
