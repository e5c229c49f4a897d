package main

import (
	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/manager"
)

// The local backend answers in the client's types, converted here from the
// manager's, field by field: both are domain types, neither is JSON.

func clientThread(t manager.Thread) client.Thread {
	return client.Thread{
		ID: t.ID, RolloutPath: t.RolloutPath, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		Cwd: t.Cwd, Source: t.Source, Originator: t.Originator, CLIVersion: t.CLIVersion, ModelProvider: t.ModelProvider,
		Git:  client.GitInfo{CommitHash: t.Git.CommitHash, Branch: t.Git.Branch, RepositoryURL: t.Git.RepositoryURL},
		Name: t.Name, Preview: t.Preview, Archived: t.Archived, ArchivedAt: t.ArchivedAt,
		ParentID: t.ParentID, ForkUserMessage: t.ForkUserMessage, ForkOffset: t.ForkOffset,
		LineCount: t.LineCount, UserMessageCount: t.UserMessageCount, IndexedSize: t.IndexedSize,
		HistoryMode: t.HistoryMode, BaseID: t.BaseID, BaseSize: t.BaseSize,
	}
}

// threadOrErr converts the thread of a call that returns one.
func threadOrErr(t manager.Thread, err error) (client.Thread, error) {
	if err != nil {
		return client.Thread{}, err
	}
	return clientThread(t), nil
}

func clientRelatives(rels []manager.Relative) []client.Relative {
	out := make([]client.Relative, len(rels))
	for i, r := range rels {
		out[i] = client.Relative{ID: r.ID, Depth: r.Depth}
		if r.Thread != nil {
			t := clientThread(*r.Thread)
			out[i].Thread = &t
		}
	}
	return out
}
