package pgbackend

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/pgstore"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// threadOf returns the manager's view of a row. RolloutPath names where
// the thread lives (pg:<id>): it has no file.
func threadOf(t pgstore.Thread) manager.Thread {
	return manager.Thread{
		ID:               t.ID,
		RolloutPath:      "pg:" + t.ID,
		CreatedAt:        t.CreatedAt.UTC(),
		UpdatedAt:        t.UpdatedAt.UTC(),
		Cwd:              t.Cwd,
		Source:           t.Source,
		Originator:       t.Originator,
		CLIVersion:       t.CLIVersion,
		ModelProvider:    t.ModelProvider,
		Git:              rollout.GitInfo{CommitHash: t.GitCommit, Branch: t.GitBranch, RepositoryURL: t.GitOrigin},
		Name:             t.Name,
		Preview:          t.Preview,
		Archived:         t.Archived,
		ArchivedAt:       t.ArchivedAt,
		ParentID:         t.ParentID,
		ForkUserMessage:  t.ForkUserMessage,
		ForkOffset:       t.ForkOffset,
		LineCount:        t.LineCount,
		UserMessageCount: t.UserMessageCount,
		IndexedSize:      t.Size,
		HistoryMode:      t.HistoryMode,
		BaseID:           t.BaseThreadID(),
		BaseSize:         t.BaseSize,
	}
}

// factsOf returns what a meta line says that the row keeps.
func factsOf(m rollout.SessionMeta) pgstore.Facts {
	f := pgstore.Facts{Source: m.Source, Originator: m.Originator, CLIVersion: m.CLIVersion, ModelProvider: m.ModelProvider}
	if m.Git != nil {
		f.GitCommit, f.GitBranch, f.GitOrigin = m.Git.CommitHash, m.Git.Branch, m.Git.RepositoryURL
	}
	return f
}

// gitOf returns t's git facts, nil for none.
func gitOf(t manager.Thread) *rollout.GitInfo {
	if t.Git == (rollout.GitInfo{}) {
		return nil
	}
	g := t.Git
	return &g
}

// previewOf shortens a user message as the local index does.
func previewOf(text string) string { return indexer.Preview(text) }

// encodeCursor returns the opaque cursor after t in a listing sorted as o
// asks: the sort and order it was made for, t's times and id.
func encodeCursor(t pgstore.Thread, o pgstore.ListOptions) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s:%d:%d:%s", cursorSort(o), t.UpdatedAt.UnixMilli(), t.CreatedAt.UnixMilli(), t.ID))
}

// cursorSort names the sort and order of o in a cursor: u or c (updated,
// created), then d or a (descending, ascending).
func cursorSort(o pgstore.ListOptions) string {
	name := []byte("ud")
	if o.ByCreated {
		name[0] = 'c'
	}
	if o.Ascending {
		name[1] = 'a'
	}
	return string(name)
}

// describeSort says the sort and order a cursorSort name stands for, as
// the local backend's cursor errors say them ("updated_at
// ascending=false"); ok is false for a name cursorSort does not make.
func describeSort(name string) (text string, ok bool) {
	if len(name) != 2 || !strings.ContainsRune("uc", rune(name[0])) || !strings.ContainsRune("da", rune(name[1])) {
		return "", false
	}
	field := store.SortUpdated
	if name[0] == 'c' {
		field = store.SortCreated
	}
	return fmt.Sprintf("%s ascending=%t", field, name[1] == 'a'), true
}

// decodeCursor reads a cursor of encodeCursor, made for a listing sorted
// as o asks (store.ErrBadCursor otherwise, as the local backend answers).
func decodeCursor(c string, o pgstore.ListOptions) (pgstore.Thread, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	parts := strings.SplitN(string(raw), ":", 4)
	if err != nil || len(parts) != 4 {
		return pgstore.Thread{}, fmt.Errorf("%w: %q", store.ErrBadCursor, c)
	}
	if want := cursorSort(o); parts[0] != want {
		made, ok := describeSort(parts[0])
		if !ok {
			return pgstore.Thread{}, fmt.Errorf("%w: %q", store.ErrBadCursor, c)
		}
		asked, _ := describeSort(want)
		return pgstore.Thread{}, fmt.Errorf("%w: made for sort %s, not %s", store.ErrBadCursor, made, asked)
	}
	updated, err1 := strconv.ParseInt(parts[1], 10, 64)
	created, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return pgstore.Thread{}, fmt.Errorf("%w: %q", store.ErrBadCursor, c)
	}
	return pgstore.Thread{ID: parts[3], UpdatedAt: time.UnixMilli(updated), CreatedAt: time.UnixMilli(created)}, nil
}
