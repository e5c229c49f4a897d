// Handlers return the manager's errors as they are: each already names
// its call and its thread, and errorFor maps them to answers.

package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// writeJSON sends v as a JSON response with the given status. v is one
// of api's types (or the server's own): a value of the manager's types,
// which have no JSON form, is a bug answered with 500 rather than a body
// in a shape the OpenAPI document does not describe.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err == nil && isDomainType(reflect.TypeOf(v)) {
		err = fmt.Errorf("server: %T is the manager's; answer with api's types (wire.go)", v)
	}
	if err != nil {
		// Only values of this package are marshalled; failing here is a bug.
		http.Error(w, `{"error":{"code":"internal","message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	writeJSONBody(w, status, body)
}

// writeJSONBody writes body, a JSON value, as writeJSON does.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// managerPkg is the import path of the manager's types.
var managerPkg = reflect.TypeFor[manager.Thread]().PkgPath()

// isDomainType reports whether t is one of the manager's types, or a
// pointer, slice, array or map of one.
func isDomainType(t reflect.Type) bool {
	for t != nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
			continue
		}
		return t.PkgPath() == managerPkg
	}
	return false
}

// threadID returns the {id} path value parsed as a canonical UUID. This is
// the only way a request names a thread, so no request path can reach the
// filesystem.
func threadID(r *http.Request) (string, error) {
	raw := r.PathValue("id")
	id, err := rollout.ParseID(raw)
	if err != nil {
		return "", errorf(http.StatusBadRequest, CodeInvalidID, "thread id %q is not a UUID", raw)
	}
	return id, nil
}

// readBody decodes the JSON request body bufferBody read into v (see
// decodeStrictObject). bufferBody has checked the Content-Type.
func readBody(r *http.Request, v any, allowEmpty bool) error {
	return decodeStrictObject(requestBody(r), v, allowEmpty)
}

// readNoBody checks that the request body bufferBody read, if any, is
// empty or {}: a route that takes no body refuses members it would
// ignore, as every route refuses unknown fields.
func readNoBody(r *http.Request) error {
	return readBody(r, &struct{}{}, true)
}

// query reads a request's query parameters, rejecting any not in allowed so
// a misspelt filter fails loudly instead of being ignored.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, CodeInvalidArgument, "cannot parse query: %v", err)
	}
	for name := range values {
		known := false
		for _, a := range allowed {
			known = known || name == a
		}
		if !known {
			return nil, errorf(http.StatusBadRequest, CodeInvalidArgument, "unknown query parameter %q", name)
		}
	}
	return values, nil
}

// parseDecimal parses s, a decimal integer written with digits only (and a
// leading minus sign when signed): no "+", no space, no underscore.
func parseDecimal(s string, signed bool) (int, error) {
	digits := s
	if signed {
		digits = strings.TrimPrefix(s, "-")
	}
	if digits == "" || len(digits) > 10 || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(s)
}

// intParam parses an optional integer query parameter within [min, max].
func intParam(values url.Values, name string, def, min, max int) (int, error) {
	s := values.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := parseDecimal(s, min < 0)
	if err != nil || n < min || n > max {
		return 0, errorf(http.StatusBadRequest, CodeInvalidArgument, "%s must be an integer in [%d, %d], not %q", name, min, max, s)
	}
	return n, nil
}

// triParam reads query parameter name (archived, spawned), def when
// absent: true or false, or all (nil).
func triParam(values url.Values, name, def string) (*bool, error) {
	s := values.Get(name)
	if s == "" {
		s = def
	}
	switch s {
	case "all":
		return nil, nil
	case "true", "false":
		b := s == "true"
		return &b, nil
	default:
		return nil, errorf(http.StatusBadRequest, CodeInvalidArgument, "%s must be true, false or all, not %q", name, s)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting_down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	var live manager.Stats
	ls, local := s.m.(manager.LiveStats)
	if local {
		live = ls.Stats()
	}
	index, err := s.m.IndexStats(r.Context())
	if err != nil {
		return fmt.Errorf("index stats: %w", err)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	values := []scraped{
		{"spool_index_threads", "Threads in the index.", float64(index.Threads), false},
		{"spool_index_archived_threads", "Archived threads in the index.", float64(index.Archived), false},
		{"spool_index_user_messages", "Counted user messages in the index.", float64(index.UserMessages), false},
		{"spool_index_file_bytes", "Size of the index database file in bytes.", float64(index.IndexBytes), false},
		{"spool_http_body_bytes_in_flight", "Bytes reserved for request bodies being read or handled.", float64(s.budget.inUse()), false},
		{"spool_http_body_bytes_limit", "Limit of spool_http_body_bytes_in_flight (-max-body-in-flight).", float64(s.budget.limit), false},
	}
	if local {
		values = append(values, localStats(live)...)
	}
	if err := s.metrics.writeTo(w, values); err != nil {
		// Only writing the answer fails here, once its status line may be
		// gone: a scraper that hung up, not an error to answer.
		return s.cutStream(r.Context(), err)
	}
	return nil
}

// localStats are the local backend's live threads and its counters of
// what appends wait for.
func localStats(live manager.Stats) []scraped {
	reconciled := 0.0
	if live.Reconciled {
		reconciled = 1
	}
	return []scraped{
		{"spool_reconciled", "1 once the walk that catches the index up with the files at start has ended, 0 while it runs.", reconciled, false},
		{"spool_live_threads", "Threads held live in memory.", float64(live.Live), false},
		{"spool_live_capacity", "Capacity of the live-thread cache.", float64(live.Capacity), false},
		{"spool_group_syncs_total", "Group syncs run for appends under -sync batch.", float64(live.Syncs.Syncs), true},
		{"spool_group_sync_requests_total", "Appends those group syncs covered.", float64(live.Syncs.Requests), true},
		{"spool_group_sync_seconds_total", "Time spent in group syncs.", live.Syncs.Busy.Seconds(), true},
		{"spool_index_commits_total", "Index transactions that committed appends' updates.", float64(live.Commits.Commits), true},
		{"spool_index_commit_updates_total", "Appends' index updates those transactions committed.", float64(live.Commits.Updates), true},
		{"spool_index_commit_seconds_total", "Time spent committing appends' index updates.", live.Commits.Busy.Seconds(), true},
		{"spool_index_commit_gathering_seconds_total", "Time batch leaders waited for their appends' group sync to begin before committing.", live.Commits.Gathering.Seconds(), true},
	}
}

// createRequest is the body of POST /v1/threads.
type createRequest struct {
	Cwd              string           `json:"cwd"`
	Source           json.RawMessage  `json:"source"`
	Originator       string           `json:"originator"`
	CLIVersion       string           `json:"cli_version"`
	ModelProvider    string           `json:"model_provider"`
	BaseInstructions string           `json:"base_instructions"`
	Name             string           `json:"name"`
	Git              *rollout.GitInfo `json:"git"`
	HistoryMode      string           `json:"history_mode"` // "paginated" (default) or "legacy"
}

// sourceText turns the source field (a string, an object such as
// {"custom":"atlas"}, or absent) into the manager's form.
func sourceText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", errorf(http.StatusBadRequest, CodeInvalidArgument, "source: %v", err)
		}
		return s, nil
	case '{':
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return "", errorf(http.StatusBadRequest, CodeInvalidArgument, "source: %v", err)
		}
		return compact.String(), nil
	default:
		return "", errorf(http.StatusBadRequest, CodeInvalidArgument, "source must be a string or an object")
	}
}

func (s *Server) createThread(w http.ResponseWriter, r *http.Request) error {
	var req createRequest
	if err := readBody(r, &req, true); err != nil {
		return err
	}
	source, err := sourceText(req.Source)
	if err != nil {
		return err
	}
	key, err := createKey(r)
	if err != nil {
		return err
	}
	thread, err := s.m.Start(r.Context(), manager.StartOptions{
		Cwd:              req.Cwd,
		Source:           source,
		Originator:       req.Originator,
		CLIVersion:       req.CLIVersion,
		ModelProvider:    req.ModelProvider,
		BaseInstructions: req.BaseInstructions,
		Name:             req.Name,
		Git:              req.Git,
		HistoryMode:      req.HistoryMode,
		IdempotencyKey:   key,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/threads/"+thread.ID)
	writeJSON(w, http.StatusCreated, wireThread(thread))
	return nil
}

func (s *Server) listThreads(w http.ResponseWriter, r *http.Request) error {
	values, err := query(r, "limit", "cursor", "sort", "order", "archived", "spawned", "cwd", "source", "model_provider", "parent", "q")
	if err != nil {
		return err
	}
	opts := manager.ListOptions{
		Cursor:        values.Get("cursor"),
		Cwd:           values.Get("cwd"),
		Source:        values.Get("source"),
		ModelProvider: values.Get("model_provider"),
		Text:          values.Get("q"),
	}
	if opts.Limit, err = intParam(values, "limit", 50, 1, 1000); err != nil {
		return err
	}
	switch sortBy := values.Get("sort"); sortBy {
	case "", "updated":
		opts.SortBy = manager.SortUpdated
	case "created":
		opts.SortBy = manager.SortCreated
	default:
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "sort must be updated or created, not %q", sortBy)
	}
	switch order := values.Get("order"); order {
	case "", "desc":
	case "asc":
		opts.Ascending = true
	default:
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "order must be asc or desc, not %q", order)
	}
	if opts.Archived, err = triParam(values, "archived", "false"); err != nil {
		return err
	}
	if opts.Spawned, err = triParam(values, "spawned", "all"); err != nil {
		return err
	}
	if parent := values.Get("parent"); parent != "" {
		if opts.ParentID, err = rollout.ParseID(parent); err != nil {
			return errorf(http.StatusBadRequest, CodeInvalidID, "parent %q is not a UUID", parent)
		}
	}
	page, err := s.m.List(r.Context(), opts)
	if err != nil {
		return err
	}
	body := api.Page{Threads: wireThreads(page.Threads), NextCursor: page.NextCursor}
	writeJSONBody(w, http.StatusOK, appendPage(make([]byte, 0, 700*len(body.Threads)+64), body))
	return nil
}

func (s *Server) getThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	thread, err := s.m.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireThread(thread))
	return nil
}

// renameRequest is the body of PATCH /v1/threads/{id}.
type renameRequest struct {
	Name *string `json:"name"`
}

func (s *Server) renameThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	var req renameRequest
	if err := readBody(r, &req, false); err != nil {
		return err
	}
	if req.Name == nil {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, `missing "name"`)
	}
	thread, err := s.m.Rename(r.Context(), id, *req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireThread(thread))
	return nil
}

func (s *Server) deleteThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	if err := s.m.Delete(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// purgeThread deletes a thread after making the threads whose history
// continues it self-contained (manager.Purge).
func (s *Server) purgeThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	if err := readNoBody(r); err != nil {
		return err
	}
	purger, err := capability[manager.Purger](s, "purge")
	if err != nil {
		return err
	}
	if err := purger.Purge(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) archiveThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	if err := readNoBody(r); err != nil {
		return err
	}
	thread, err := s.m.Archive(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireThread(thread))
	return nil
}

func (s *Server) unarchiveThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	if err := readNoBody(r); err != nil {
		return err
	}
	thread, err := s.m.Unarchive(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireThread(thread))
	return nil
}

func (s *Server) appendItems(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	ndjson, err := bodyIsNDJSON(r)
	if err != nil {
		return err
	}
	body, err := decodeAppend(ndjson, requestBody(r))
	if err != nil {
		return err
	}
	opts, err := appendOptions(r)
	if err != nil {
		return err
	}
	var result manager.AppendResult
	if ndjson {
		result, err = s.m.AppendLinesWith(r.Context(), id, body.lines, opts)
		err = body.bodyLine(err)
	} else {
		result, err = s.m.AppendWith(r.Context(), id, body.items, opts)
	}
	if err != nil {
		return err
	}
	if len(result.Offsets) > 0 && !result.Replayed { // a replay wrote nothing
		s.metrics.observeAppend(len(result.Offsets), result.Thread.HistorySize()-result.Offsets[0])
	}
	writeJSON(w, http.StatusOK, wireAppendResult(result))
	return nil
}

// bodyLine makes the message of a *manager.LineError in err, which numbers
// the lines the manager was given, name the line of the body instead
// (blank lines were dropped before the manager saw them), so that one body
// has one numbering. The error still wraps what err wraps.
func (b appendBody) bodyLine(err error) error {
	var lineErr *manager.LineError
	if !errors.As(err, &lineErr) || lineErr.Line < 1 || lineErr.Line > len(b.lineNumbers) {
		return err
	}
	given := lineErr.Error()
	inBody := *lineErr
	inBody.Line = b.lineNumbers[lineErr.Line-1]
	return &renamedError{err: err, msg: strings.Replace(err.Error(), given, inBody.Error(), 1)}
}

// renamedError is err with another message.
type renamedError struct {
	err error
	msg string
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }

// streamNDJSON copies a reader of rollout lines to the client. The first
// bytes are read before the status line is sent, so a read that fails at
// once is answered with its error (503 when the storage cannot be
// reached); a failure after that can only cut the stream short. Each write
// gets its own deadline, so a long stream is not cut by the server's
// WriteTimeout while a stalled client still is.
func (s *Server) streamNDJSON(ctx context.Context, w http.ResponseWriter, lines io.ReadCloser) error {
	defer lines.Close()
	br := bufio.NewReaderSize(lines, 64<<10)
	if _, err := br.Peek(1); err != nil && err != io.EOF {
		return err
	}
	w.Header().Set("Content-Type", mediaNDJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: s.cfg.StreamWriteTimeout}
	if _, err := br.WriteTo(dw); err != nil {
		// The status line is gone: all that is left is to cut the stream
		// short, which the client sees as a truncated body.
		s.log.WarnContext(ctx, "NDJSON stream cut short", "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// deadlineWriter sets a fresh write deadline before each write.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	// An error means the connection does not support deadlines (such as
	// an HTTP/2 test recorder); the server's WriteTimeout then applies.
	if err := d.rc.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	return d.w.Write(p)
}

func (s *Server) readItems(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	values, err := query(r, "from_user_message", "from_offset", "follow")
	if err != nil {
		return err
	}
	from, err := intParam(values, "from_user_message", -1, -1, 1<<30)
	if err != nil {
		return err
	}
	offset, err := offsetParam(r, values)
	if err != nil {
		return err
	}
	follow := false
	switch v := values.Get("follow"); v {
	case "", "0", "false":
	case "1", "true":
		// A HEAD is answered at once, as a read would be: a follow never
		// ends by itself, and its headers would hold the connection.
		follow = r.Method != http.MethodHead
	default:
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "follow must be 1, true, 0 or false, not %q", v)
	}
	if values.Has("from_offset") && values.Has("from_user_message") {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "give from_offset or from_user_message, not both")
	}
	if follow {
		if offset < 0 {
			offset = 0
			if from >= 0 {
				if offset, err = s.userMessageOffset(r.Context(), id, from); err != nil {
					return err
				}
			}
		}
		return s.follow(w, r, id, offset)
	}
	if offset >= 0 {
		lines, _, err := s.m.ReadAfter(r.Context(), id, offset)
		if err != nil {
			return err
		}
		return s.streamNDJSON(r.Context(), w, lines)
	}
	lines, err := s.m.ReadFrom(r.Context(), id, from)
	if err != nil {
		return err
	}
	return s.streamNDJSON(r.Context(), w, lines)
}

// turnsResponse is the body of GET /v1/threads/{id}/turns.
type turnsResponse struct {
	Turns []api.UserMessage `json:"turns"`
}

func (s *Server) readTurn(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	k, err := parseDecimal(r.PathValue("k"), false)
	if err != nil || k < 0 {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "turn %q is not a non-negative integer", r.PathValue("k"))
	}
	lines, err := s.m.ReadTurn(r.Context(), id, k)
	if err != nil {
		return err
	}
	return s.streamNDJSON(r.Context(), w, lines)
}

// forkRequest is the body of POST /v1/threads/{id}/fork.
type forkRequest struct {
	BeforeUserMessage *int   `json:"before_user_message"`
	BeforeTurnID      string `json:"before_turn_id"`
	LastTurnID        string `json:"last_turn_id"`
	Name              string `json:"name"`
	Cwd               string `json:"cwd"`
	Source            string `json:"source"` // the forking client's; "" keeps the parent's
	Mode              string `json:"mode"`   // "reference", "copy" or "" (by the parent's mode)
}

func (s *Server) forkThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	var req forkRequest
	if err := readBody(r, &req, true); err != nil {
		return err
	}
	if req.BeforeUserMessage != nil && *req.BeforeUserMessage < 0 {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "before_user_message must not be negative")
	}
	key, err := createKey(r)
	if err != nil {
		return err
	}
	thread, err := s.m.Fork(r.Context(), id, manager.ForkOptions{
		BeforeUserMessage: req.BeforeUserMessage,
		BeforeTurnID:      req.BeforeTurnID,
		LastTurnID:        req.LastTurnID,
		Name:              req.Name,
		Cwd:               req.Cwd,
		Source:            req.Source,
		Mode:              req.Mode,
		IdempotencyKey:    key,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/threads/"+thread.ID)
	writeJSON(w, http.StatusCreated, wireThread(thread))
	return nil
}

func (s *Server) ancestors(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	lineage, err := capability[manager.Lineage](s, "ancestors")
	if err != nil {
		return err
	}
	relatives, err := lineage.Ancestors(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Ancestors{Ancestors: wireRelatives(relatives)})
	return nil
}

func (s *Server) descendants(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	lineage, err := capability[manager.Lineage](s, "descendants")
	if err != nil {
		return err
	}
	relatives, err := lineage.Descendants(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Descendants{Descendants: wireRelatives(relatives)})
	return nil
}

func (s *Server) tree(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	lineage, err := capability[manager.Lineage](s, "tree")
	if err != nil {
		return err
	}
	root, members, err := lineage.Tree(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Tree{Root: wireThread(root), Members: wireRelatives(members)})
	return nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	values, err := query(r, "q", "limit", "archived", "cwd", "source", "thread", "cursor")
	if err != nil {
		return err
	}
	opts := manager.SearchOptions{
		Query:  values.Get("q"),
		Cwd:    values.Get("cwd"),
		Source: values.Get("source"),
		Cursor: values.Get("cursor"),
	}
	if thread := values.Get("thread"); thread != "" {
		if opts.ThreadID, err = rollout.ParseID(thread); err != nil {
			return errorf(http.StatusBadRequest, CodeInvalidID, "thread %q is not a UUID", thread)
		}
	}
	if opts.Query == "" {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "missing query parameter q")
	}
	if opts.Limit, err = intParam(values, "limit", store.DefaultSearchLimit, 1, store.MaxSearchLimit); err != nil {
		return err
	}
	if opts.Archived, err = triParam(values, "archived", "all"); err != nil {
		return err
	}
	searcher, err := capability[manager.Searcher](s, "search")
	if err != nil {
		return err
	}
	page, err := searcher.SearchPage(r.Context(), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireSearchPage(page))
	return nil
}

// Headers of a conditional or idempotent append.
const (
	headerExpectedSize   = "Expected-Size"
	headerIdempotencyKey = "Idempotency-Key"
	headerLastEventID    = "Last-Event-ID"
)

// sentHeader returns the first value of header name and whether the
// request sent it: one sent empty is sent, so that a client whose size or
// key came out blank is told so rather than served as if it sent none.
func sentHeader(r *http.Request, name string) (string, bool) {
	values := r.Header.Values(name)
	if len(values) == 0 {
		return "", false
	}
	return values[0], true
}

// appendOptions reads the Expected-Size and Idempotency-Key headers.
func appendOptions(r *http.Request) (manager.AppendOptions, error) {
	var o manager.AppendOptions
	if v, ok := sentHeader(r, headerExpectedSize); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || strings.TrimLeft(v, "0123456789") != "" {
			return o, errorf(http.StatusBadRequest, CodeInvalidArgument, "%s must be a positive decimal integer, not %q", headerExpectedSize, v)
		}
		o.ExpectedSize = n
	}
	key, err := idempotencyKey(r)
	o.IdempotencyKey = key
	return o, err
}

// idempotencyKey reads the Idempotency-Key header ("" when absent).
func idempotencyKey(r *http.Request) (string, error) {
	v, sent := sentHeader(r, headerIdempotencyKey)
	if sent && v == "" || manager.CheckIdempotencyKey(v) != nil {
		return "", errorf(http.StatusBadRequest, CodeInvalidArgument, "%s must be 1 to %d printable ASCII characters", headerIdempotencyKey, manager.MaxIdempotencyKeyLen)
	}
	return v, nil
}

// createKey reads the Idempotency-Key of a start or fork, which take no
// Expected-Size (there is no thread, or the parent's size decides
// nothing): one sent is refused rather than ignored.
func createKey(r *http.Request) (string, error) {
	if _, sent := sentHeader(r, headerExpectedSize); sent {
		return "", errorf(http.StatusBadRequest, CodeInvalidArgument, "%s applies to appends, not to a start or fork", headerExpectedSize)
	}
	return idempotencyKey(r)
}

// offsetParam returns the byte offset a read starts at: the
// Last-Event-ID header, or else the from_offset query parameter; -1 when
// neither is given. The header wins over any start the query names: it is
// an SSE client's reconnect, which repeats the URL it first opened, so the
// query says where the stream began and the header where the client got
// to.
func offsetParam(r *http.Request, values url.Values) (int64, error) {
	offset := int64(-1)
	for _, p := range []struct{ name, value string }{
		{"from_offset", values.Get("from_offset")},
		{headerLastEventID, r.Header.Get(headerLastEventID)},
	} {
		if p.value == "" {
			continue
		}
		n, err := strconv.ParseInt(p.value, 10, 64)
		if err != nil || n < 0 || strings.TrimLeft(p.value, "0123456789") != "" {
			return 0, errorf(http.StatusBadRequest, CodeInvalidArgument, "%s must be a non-negative decimal integer, not %q", p.name, p.value)
		}
		offset = n
	}
	return offset, nil
}

// userMessageOffset returns the byte offset of thread id's user message k.
func (s *Server) userMessageOffset(ctx context.Context, id string, k int) (int64, error) {
	msgs, count, err := s.m.UserMessagesBetween(ctx, id, k, k+1)
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		if k == 0 {
			return 0, nil
		}
		return 0, &manager.OutOfRangeError{ID: id, Requested: k, Count: count}
	}
	return msgs[0].Offset, nil
}
