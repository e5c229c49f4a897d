package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/indexer"
	"github.com/spoolhq/spool/internal/buildhint"
	"github.com/spoolhq/spool/lockfile"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rolloutfs"
	"github.com/spoolhq/spool/store"
)

// backend is what the commands need from a store of threads. Two
// implementations: remote talks to a running spoold through the Go
// client; local opens a root itself through the manager. Both speak the
// client's types and return its errors' meaning (a *client.Error remotely,
// the manager's sentinels locally).
type backend interface {
	// Describe says where the threads are, for people.
	Describe() string
	List(ctx context.Context, o client.ListOptions) (client.Page, error)
	Get(ctx context.Context, id string) (client.Thread, error)
	Turns(ctx context.Context, id string) ([]client.Turn, error)
	// Items iterates over the history from user message from on (from < 0:
	// all of it); line offsets count from the stream's start.
	Items(ctx context.Context, id string, from int) iter.Seq2[client.Line, error]
	Fork(ctx context.Context, id string, o client.ForkOptions) (client.Thread, error)
	Tree(ctx context.Context, id string) (client.Tree, error)
	Search(ctx context.Context, o client.SearchOptions) ([]client.SearchHit, error)
	Rename(ctx context.Context, id, name string) (client.Thread, error)
	Archive(ctx context.Context, id string) (client.Thread, error)
	Unarchive(ctx context.Context, id string) (client.Thread, error)
	Delete(ctx context.Context, id string) error
	// Purge deletes a thread after making the threads whose history
	// continues it self-contained.
	Purge(ctx context.Context, id string) error
	// Doctor checks the index against the files and reports what differs.
	Doctor(ctx context.Context) (doctorReport, error)
	Close() error
}

// remote is a spoold reached through the Go client.
type remote struct {
	*client.Client
}

func (r remote) Describe() string { return "spoold at " + redacted(r.BaseURL()) }

// redacted is the address addr (spoold's, host:port or a URL, or
// transfer's postgres:// URL) for people: a password it holds (a proxy's
// basic auth, a database's, or a password= parameter) shown as xxxxx, as
// url.URL.Redacted shows it. Of an address that does not parse, all that
// comes before the host's @ is hidden.
func redacted(addr string) string {
	full := addr
	if !strings.Contains(full, "://") {
		full = "http://" + full
	}
	u, err := url.Parse(full)
	if err != nil {
		scheme, rest, _ := strings.Cut(full, "://")
		authority, path, slash := strings.Cut(rest, "/")
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			authority = "xxxxx" + authority[at:]
		}
		if slash {
			authority += "/" + path
		}
		return strings.TrimPrefix(scheme+"://"+authority, "http://")
	}
	_, hasPassword := u.User.Password()
	query := u.Query()
	if !hasPassword && !query.Has("password") {
		return addr
	}
	if query.Has("password") {
		query.Set("password", "xxxxx")
		u.RawQuery = query.Encode()
	}
	if full != addr {
		return strings.TrimPrefix(u.Redacted(), "http://")
	}
	return u.Redacted()
}

func (r remote) Close() error { return nil }

// local is a root opened in this process. The manager is opened on first
// use, so doctor can verify the index before anything reconciles it.
type local struct {
	root string
	// index is the index file, "" for ROOT/spool.db: a Codex home served
	// with spoold -index elsewhere is opened with the same index, so the
	// command neither writes a second index into the home nor misses the
	// lock of a spoold serving it.
	index string
	// direct is set when --local asked for the root, not a spoold.
	direct bool
	// stateHome is $XDG_STATE_HOME, else ~/.local/state ("" when there is
	// no home): where doctor's hint builds the index of a Codex home.
	stateHome string
	log       *slog.Logger
	m         *manager.Manager
}

// errNoRoot reports a root that does not exist: every command reads or
// changes threads already there, so none makes an empty root (a mistyped
// --root or $SPOOL_ADDR would otherwise show an empty list).
var errNoRoot = errors.New("no such root")

func (l *local) Describe() string {
	if l.index == "" {
		return "root " + l.root
	}
	return "root " + l.root + " (index " + l.index + ")"
}

// indexPath is the index file of the root.
func (l *local) indexPath() string {
	if l.index == "" {
		return filepath.Join(l.root, manager.IndexFile)
	}
	return l.index
}

func (l *local) mgr(ctx context.Context) (*manager.Manager, error) {
	if l.m != nil {
		return l.m, nil
	}
	if fi, err := os.Stat(l.root); errors.Is(err, fs.ErrNotExist) {
		if l.direct {
			return nil, fmt.Errorf("%w: %s (--root or $SPOOL_ROOT names it)", errNoRoot, l.root)
		}
		return nil, fmt.Errorf("%w: %s (is spoold running elsewhere? set SPOOL_ADDR or --addr; else --root or $SPOOL_ROOT)", errNoRoot, l.root)
	} else if err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("root %s is not a directory (--root or $SPOOL_ROOT names a Codex home or a spool root)", l.root)
	}
	if !manager.LooksLikeRoot(l.root, l.indexPath()) {
		return nil, fmt.Errorf("%w: %s (--root or $SPOOL_ROOT names a Codex home or a spool root)", manager.ErrNotRoot, l.root)
	}
	m, err := manager.Open(ctx, manager.Options{Root: l.root, IndexPath: l.index, Logger: l.log, Capacity: 16})
	if err != nil {
		return nil, lockedHint(err, l.root, "is it a spoold serving it on another address? set SPOOL_ADDR")
	}
	l.m = m
	return m, nil
}

// lockedHint explains a locked root: a spoold that this command could not
// reach, or another command that has it open. ifServer is the advice when
// a spoold holds it.
func lockedHint(err error, root, ifServer string) error {
	var held *lockfile.HeldError
	if !errors.As(err, &held) {
		return err
	}
	holder := strings.TrimSpace(held.Holder)
	if holder == "" {
		holder = "another process"
	}
	hint := "wait for it to finish"
	if strings.HasPrefix(holder, "spoold ") || !strings.Contains(holder, "(pid ") {
		hint = ifServer
	}
	return fmt.Errorf("root %s is in use by %s; %s: %w", root, holder, hint, lockfile.ErrLocked)
}

func (l *local) Close() error {
	if l.m == nil {
		return nil
	}
	return l.m.Close()
}

func archivedFilter(f client.ArchivedFilter) *bool { return triFilter(string(f)) }

func spawnedFilter(f client.SpawnedFilter) *bool { return triFilter(string(f)) }

// triFilter is a filter's query value, "true", "false" or else all, as the
// manager takes it.
func triFilter(v string) *bool {
	switch v {
	case "true", "false":
		b := v == "true"
		return &b
	}
	return nil
}

func (l *local) List(ctx context.Context, o client.ListOptions) (client.Page, error) {
	m, err := l.mgr(ctx)
	if err != nil {
		return client.Page{}, err
	}
	return listThreads(ctx, m, o)
}

// listThreads lists the threads of b as the server would answer o.
func listThreads(ctx context.Context, b manager.Backend, o client.ListOptions) (client.Page, error) {
	if o.Archived == "" {
		o.Archived = client.LiveOnly // the server's default
	}
	if o.Limit == 0 {
		o.Limit = 50
	}
	opts := manager.ListOptions{
		Limit: o.Limit, Cursor: o.Cursor, Ascending: o.Ascending, Archived: archivedFilter(o.Archived),
		Spawned: spawnedFilter(o.Spawned), Cwd: o.Cwd, Source: o.Source, ModelProvider: o.ModelProvider, ParentID: o.ParentID, Text: o.Text,
	}
	if o.Sort == client.SortCreated {
		opts.SortBy = manager.SortCreated
	}
	page, err := b.List(ctx, opts)
	if err != nil {
		return client.Page{}, err
	}
	threads := make([]client.Thread, len(page.Threads))
	for i, t := range page.Threads {
		threads[i] = clientThread(t)
	}
	return client.Page{Threads: threads, NextCursor: page.NextCursor}, nil
}

func (l *local) Get(ctx context.Context, id string) (client.Thread, error) {
	m, err := l.mgr(ctx)
	if err != nil {
		return client.Thread{}, err
	}
	return threadOrErr(m.Get(ctx, id))
}

func (l *local) Turns(ctx context.Context, id string) ([]client.Turn, error) {
	m, err := l.mgr(ctx)
	if err != nil {
		return nil, err
	}
	msgs, err := m.UserMessages(ctx, id)
	if err != nil {
		return nil, err
	}
	turns := make([]client.Turn, len(msgs))
	for i, msg := range msgs {
		turns[i] = client.Turn(msg)
	}
	return turns, nil
}

func (l *local) Items(ctx context.Context, id string, from int) iter.Seq2[client.Line, error] {
	return func(yield func(client.Line, error) bool) {
		m, err := l.mgr(ctx)
		if err != nil {
			yield(client.Line{}, err)
			return
		}
		rc, err := m.ReadFrom(ctx, id, from)
		if err != nil {
			yield(client.Line{}, err)
			return
		}
		defer rc.Close()
		for line, err := range client.Lines(rc) {
			if ctx.Err() != nil {
				// A file does not see the interrupt, as spoold's stream
				// does: a long history would be read to its end.
				yield(client.Line{}, ctx.Err())
				return
			}
			if !yield(line, err) {
				return
			}
		}
	}
}

func (l *local) Fork(ctx context.Context, id string, o client.ForkOptions) (client.Thread, error) {
	m, err := l.mgr(ctx)
	if err != nil {
		return client.Thread{}, err
	}
	return threadOrErr(m.Fork(ctx, id, manager.ForkOptions{
		BeforeUserMessage: o.BeforeUserMessage, BeforeTurnID: o.BeforeTurnID, LastTurnID: o.LastTurnID,
		Name: o.Name, Cwd: o.Cwd, Source: o.Source, Mode: o.Mode,
	}))
}

func (l *local) Tree(ctx context.Context, id string) (client.Tree, error) {
	m, err := l.mgr(ctx)
	if err != nil {
		return client.Tree{}, err
	}
	root, members, err := m.Tree(ctx, id)
	if err != nil {
		return client.Tree{}, err
	}
	return client.Tree{Root: clientThread(root), Members: clientRelatives(members)}, nil
}

func (l *local) Search(ctx context.Context, o client.SearchOptions) ([]client.SearchHit, error) {
	m, err := l.mgr(ctx)
	if err != nil {
		return nil, err
	}
	// The server's default and bounds, with its message, so that both
	// backends answer every limit alike.
	if o.Limit == 0 {
		o.Limit = store.DefaultSearchLimit
	}
	if o.Limit < 1 || o.Limit > store.MaxSearchLimit {
		return nil, fmt.Errorf("%w: limit must be an integer in [1, %d], not %q", manager.ErrInvalidArgument, store.MaxSearchLimit, strconv.Itoa(o.Limit))
	}
	hits, err := m.Search(ctx, manager.SearchOptions{Query: o.Query, Limit: o.Limit, Archived: archivedFilter(o.Archived)})
	if err != nil {
		return nil, err
	}
	out := make([]client.SearchHit, len(hits))
	for i, h := range hits {
		out[i] = client.SearchHit(h)
	}
	return out, nil
}

func (l *local) Rename(ctx context.Context, id, name string) (client.Thread, error) {
	m, err := l.mgr(ctx)
	if err != nil {
		return client.Thread{}, err
	}
	return threadOrErr(m.Rename(ctx, id, name))
}

func (l *local) Archive(ctx context.Context, id string) (client.Thread, error) {
	m, err := l.mgr(ctx)
	if err != nil {
		return client.Thread{}, err
	}
	return threadOrErr(m.Archive(ctx, id))
}

func (l *local) Unarchive(ctx context.Context, id string) (client.Thread, error) {
	m, err := l.mgr(ctx)
	if err != nil {
		return client.Thread{}, err
	}
	return threadOrErr(m.Unarchive(ctx, id))
}

func (l *local) Delete(ctx context.Context, id string) error {
	m, err := l.mgr(ctx)
	if err != nil {
		return err
	}
	return m.Delete(ctx, id)
}

func (l *local) Purge(ctx context.Context, id string) error {
	m, err := l.mgr(ctx)
	if err != nil {
		return err
	}
	return m.Purge(ctx, id)
}

// Doctor runs the indexer's verification (as reindex --verify does) on
// the root's index without opening the manager, whose open would catch the
// index up with the files and hide the drift being looked for.
func (l *local) Doctor(ctx context.Context) (doctorReport, error) {
	if l.m != nil {
		return doctorReport{}, errors.New("doctor: the root is already open in this process")
	}
	switch fi, err := os.Stat(l.root); {
	case errors.Is(err, fs.ErrNotExist):
		return doctorReport{}, fmt.Errorf("doctor: %w: %s", errNoRoot, l.root)
	case err != nil:
		return doctorReport{}, fmt.Errorf("doctor: %w", err)
	case !fi.IsDir():
		return doctorReport{}, fmt.Errorf("doctor: root %s is not a directory", l.root)
	}
	// It changes nothing: a root without an index gets none (nor a lock
	// file), as reindex --verify.
	index := l.indexPath()
	if _, err := os.Stat(index); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Not "no index": one that cannot be looked at (a directory
		// that is not the user's) may well be there.
		return doctorReport{}, fmt.Errorf("doctor: %w", err)
	} else if err != nil && !manager.LooksLikeRoot(l.root, index) {
		// Nor a hint to build one in a directory named by mistake.
		return doctorReport{}, fmt.Errorf("doctor: %w: %s (--root or $SPOOL_ROOT names a Codex home or a spool root)", manager.ErrNotRoot, l.root)
	} else if err != nil {
		return doctorReport{}, fmt.Errorf("doctor: no index to check at %s (%s): %w", index, buildhint.Hint(l.root, l.index, l.stateHome, func(root, index string) []string {
			return []string{"spool", "--root", root, "--index", index, "doctor"}
		}), err)
	}
	// Read-only, as reindex --verify: no lock, so it runs beside spoold
	// (threads written meanwhile may show as drift), and nothing written.
	st, err := store.OpenReadOnly(ctx, index)
	if err != nil {
		return doctorReport{}, err
	}
	defer st.Close()
	rep, err := indexer.Verify(ctx, st, rolloutfs.Local{Root: l.root})
	if err != nil {
		return doctorReport{}, err
	}
	out := doctorReport{
		Where:   l.Describe(),
		Method:  "indexer verify: every rollout file re-read and compared with its index rows",
		Files:   rep.Files,
		Threads: rep.Threads,
	}
	for _, d := range rep.Drifts {
		out.Drifts = append(out.Drifts, drift{Kind: string(d.Kind), ThreadID: d.ThreadID, Path: d.Path, Detail: d.Detail})
	}
	for _, p := range rep.Problems {
		out.Problems = append(out.Problems, p.String())
		if p.Unindexed() {
			out.unreadable++
		}
	}
	return out, nil
}
