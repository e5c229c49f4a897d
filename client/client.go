// Package client is a typed Go client for spoold, spool's HTTP JSON API
// (docs/API.md). Every route has a method; a method that does I/O takes a
// context first. Histories stream as iter.Seq2[Line, error] iterators that
// read the server's NDJSON as they go. Error answers are *Error values that
// match the sentinel of their code with errors.Is:
//
//	c, err := client.FromEnv()
//	thread, err := c.Get(ctx, id)
//	if errors.Is(err, client.ErrNotFound) { ... }
//
// A Client is safe for concurrent use.
package client

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultAddr is the address spoold listens on by default.
const DefaultAddr = "127.0.0.1:7878"

// Client talks to one spoold. Create it with New or FromEnv.
type Client struct {
	base    *url.URL
	token   string
	http    *http.Client
	retries int                                              // WithRetries
	limit   int64                                            // WithMaxAnswer
	pause   func(ctx context.Context, d time.Duration) error // waits before a retry
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as "Authorization: Bearer <token>" on every
// request; "" sends none.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient makes the Client send its requests through hc instead of
// http.DefaultClient; nil keeps http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// DefaultMaxAnswer is how many bytes a Client reads into memory at most
// from one answer (a JSON body, /metrics, /openapi.json) and from one line
// or event record of a stream, unless WithMaxAnswer says otherwise. It is
// eight times the server's default -max-body (64 MiB): a line is written
// by one append, so it is at most -max-body; an append's answer and its
// appended event hold an offset per line, at most about 4.4 bytes of JSON
// per byte appended (lines of "{}"). A page of full turns holds the bytes
// of up to 200 turns, which a long thread's may pass: ask for fewer.
const DefaultMaxAnswer = 512 << 20

// WithMaxAnswer bounds what the Client reads into memory from one answer,
// line or event record to n bytes (see DefaultMaxAnswer; n <= 0 keeps the
// default). Past it the call fails with an error matching
// ErrAnswerTooLarge, so a broken or hostile server cannot make it
// allocate without bound. Raise it for a server whose -max-body is larger
// than 64 MiB. The raw streams (ReadItems, ReadTurn, ReadTurnByID) are the
// caller's to read and are not bounded.
func WithMaxAnswer(n int64) Option {
	return func(c *Client) {
		if n > 0 {
			c.limit = n
		}
	}
}

// New returns a Client for the server at addr: "host:port" (http is
// assumed) or an http(s) URL, which may carry a path prefix.
func New(addr string, opts ...Option) (*Client, error) {
	base, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, http: http.DefaultClient, pause: sleep, limit: DefaultMaxAnswer}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// FromEnv returns a Client for $SPOOL_ADDR (default DefaultAddr) with the
// token $SPOOL_TOKEN. Options given override the environment.
func FromEnv(opts ...Option) (*Client, error) {
	addr := os.Getenv("SPOOL_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	return New(addr, append([]Option{WithToken(os.Getenv("SPOOL_TOKEN"))}, opts...)...)
}

func parseAddr(addr string) (*url.URL, error) {
	if addr == "" {
		return nil, errors.New("client: empty server address")
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("client: server address: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: server address %q is not host:port or an http(s) URL", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// BaseURL returns the server's URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// request sends a request and returns the answer when its status is
// want; any other status is returned as an *Error, and the body closed.
func (c *Client) request(ctx context.Context, method, path string, q url.Values, contentType string, body io.Reader, want int) (*http.Response, error) {
	return c.requestWith(ctx, method, path, q, nil, contentType, body, want)
}

// requestWith is request with extra headers.
func (c *Client) requestWith(ctx context.Context, method, path string, q url.Values, header http.Header, contentType string, body io.Reader, want int) (*http.Response, error) {
	// path is escaped already (threadPath): set the escaped form beside
	// the plain one, or String would escape its '%' again.
	plain, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	u := *c.base
	u.RawPath = u.EscapedPath() + path
	u.Path += plain
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err) // a *url.Error: it names the method and URL
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// decodeError reads an error answer. A body that is not the API's error
// shape still gives an *Error, with a code taken from the status.
func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	apiErr := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp)}
	var body errorBody
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		apiErr.Code, apiErr.Message, apiErr.UserMessages = body.Error.Code, body.Error.Message, body.Error.UserMessages
		apiErr.Size = body.Error.Size
		return apiErr
	}
	apiErr.Code = statusCodes[resp.StatusCode]
	apiErr.Message = plainMessage(resp.Header.Get("Content-Type"), data)
	if apiErr.Message == "" {
		apiErr.Message = http.StatusText(resp.StatusCode)
	}
	return apiErr
}

// maxPlainMessage bounds the message kept from an answer that is not
// spoold's JSON error.
const maxPlainMessage = 200

// plainMessage is the message of an error answer that is not spoold's
// (a proxy's, or something else listening at the address): its text on
// one line, cut short, or nothing for a page of HTML, which says less
// than the status.
func plainMessage(contentType string, data []byte) string {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "text/html") ||
		bytes.HasPrefix(bytes.TrimSpace(bytes.ToLower(data[:min(len(data), 64)])), []byte("<!doctype html")) {
		return ""
	}
	msg := strings.Join(strings.Fields(string(data)), " ")
	if r := []rune(msg); len(r) > maxPlainMessage {
		msg = string(r[:maxPlainMessage]) + "…"
	}
	return msg
}

// call sends in (nil for no body) as JSON and decodes the answer into out
// (nil to discard it).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in any, want int, out any) error {
	return c.callWith(ctx, method, path, q, nil, in, want, out)
}

// callWith is call with extra headers.
func (c *Client) callWith(ctx context.Context, method, path string, q url.Values, header http.Header, in any, want int, out any) error {
	var body io.Reader
	contentType := ""
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: %s %s: %w", method, path, err)
		}
		body, contentType = bytes.NewReader(data), "application/json"
	}
	resp, err := c.requestWith(ctx, method, path, q, header, contentType, body, want)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		// The decoder stops at the value's end, which may be the end of
		// what it read: the newline after it is drained.
		err = json.NewDecoder(capped(resp.Body, c.limit)).Decode(out)
		drain(resp.Body)
	}
	if err != nil {
		return fmt.Errorf("client: %s %s: read answer: %w", method, path, err)
	}
	return nil
}

// threadPath returns the path of thread id's route rest. An empty or blank
// id, which would name another route (GET /v1/threads/ is no thread), fails
// with ErrInvalidID, so no request is sent; every other id is the server's
// to judge.
func threadPath(id string, rest ...string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", fmt.Errorf("%w: thread id %q is blank", ErrInvalidID, id)
	}
	return "/v1/threads/" + url.PathEscape(id) + strings.Join(rest, ""), nil
}

// callThread is call on the route rest of thread id (see threadPath).
func (c *Client) callThread(ctx context.Context, method, id, rest string, q url.Values, in any, want int, out any) error {
	path, err := threadPath(id, rest)
	if err != nil {
		return err
	}
	return c.call(ctx, method, path, q, in, want, out)
}

// Health checks GET /healthz, which needs no token. It returns nil when
// the server answers ok, and an error matching ErrUnavailable while it
// shuts down. It asks once, whatever WithRetries says: its answer is the
// server's state at that moment.
func (c *Client) Health(ctx context.Context) error {
	resp, err := c.request(sendOnce(ctx), "GET", "/healthz", nil, "", nil, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	drain(resp.Body)
	return nil
}

// drain reads what is left of an answer's body (its JSON's newline, at
// least), up to a bound: net/http closes the connection of an answer closed
// before its end, so the next call would open another.
func drain(body io.Reader) { io.Copy(io.Discard, io.LimitReader(body, 64<<10)) }

// Metrics returns the server's Prometheus metrics, in text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	return c.get(ctx, "/metrics")
}

// OpenAPI returns the server's OpenAPI 3.1 document.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	return c.get(ctx, "/openapi.json")
}

func (c *Client) get(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.request(ctx, "GET", path, nil, "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(capped(resp.Body, c.limit))
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	return data, nil
}

// Create starts a thread (POST /v1/threads) and returns it.
func (c *Client) Create(ctx context.Context, o CreateOptions) (Thread, error) {
	var t Thread
	return t, c.callWith(ctx, "POST", "/v1/threads", nil, keyHeader(c.key(o.IdempotencyKey)), o, http.StatusCreated, &t)
}

// List returns one page of threads (GET /v1/threads). Pass the page's
// NextCursor as Cursor to get the next one, or use Threads.
func (c *Client) List(ctx context.Context, o ListOptions) (Page, error) {
	q := url.Values{}
	set := func(name, value string) {
		if value != "" {
			q.Set(name, value)
		}
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	set("cursor", o.Cursor)
	set("sort", string(o.Sort))
	if o.Ascending {
		q.Set("order", "asc")
	}
	set("archived", string(o.Archived))
	set("spawned", string(o.Spawned))
	set("cwd", o.Cwd)
	set("source", o.Source)
	set("model_provider", o.ModelProvider)
	set("parent", o.ParentID)
	set("q", o.Text)
	var page Page
	return page, c.call(ctx, "GET", "/v1/threads", q, nil, http.StatusOK, &page)
}

// Threads iterates over every thread o selects, page after page, from
// o.Cursor on; o.Limit is the page size. Iteration stops at the first
// error, which is yielded.
func (c *Client) Threads(ctx context.Context, o ListOptions) iter.Seq2[Thread, error] {
	return func(yield func(Thread, error) bool) {
		for {
			page, err := c.List(ctx, o)
			if err != nil {
				yield(Thread{}, err)
				return
			}
			for _, t := range page.Threads {
				if !yield(t, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			if page.NextCursor == o.Cursor {
				yield(Thread{}, fmt.Errorf("client: list threads: the server answered cursor %q with itself", o.Cursor))
				return
			}
			o.Cursor = page.NextCursor
		}
	}
}

// Get returns thread id.
func (c *Client) Get(ctx context.Context, id string) (Thread, error) {
	var t Thread
	return t, c.callThread(ctx, "GET", id, "", nil, nil, http.StatusOK, &t)
}

// Rename sets thread id's name; "" clears it.
func (c *Client) Rename(ctx context.Context, id, name string) (Thread, error) {
	var t Thread
	return t, c.callThread(ctx, "PATCH", id, "", nil, map[string]string{"name": name}, http.StatusOK, &t)
}

// Delete removes thread id, its file and its index rows. Its forks keep
// their lineage. A thread whose history other threads continue (a base of
// reference forks) is refused with ErrReferenced: see Purge.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.callThread(ctx, "DELETE", id, "", nil, nil, http.StatusNoContent, nil)
}

// Purge deletes thread id also when other threads' history continues it
// (reference forks, where Delete fails with ErrReferenced): those threads
// are first made self-contained, keeping their ids and histories.
func (c *Client) Purge(ctx context.Context, id string) error {
	return c.callThread(ctx, "POST", id, "/purge", nil, nil, http.StatusNoContent, nil)
}

// Archive moves thread id to the archive; appends to it then fail with
// ErrArchived.
func (c *Client) Archive(ctx context.Context, id string) (Thread, error) {
	var t Thread
	return t, c.callThread(ctx, "POST", id, "/archive", nil, nil, http.StatusOK, &t)
}

// Unarchive moves thread id back from the archive; a thread that is not
// archived fails with ErrNotArchived.
func (c *Client) Unarchive(ctx context.Context, id string) (Thread, error) {
	var t Thread
	return t, c.callThread(ctx, "POST", id, "/unarchive", nil, nil, http.StatusOK, &t)
}

// Append appends items to thread id, in order, as one write: they are on
// disk (per the server's sync policy) when it returns.
func (c *Client) Append(ctx context.Context, id string, items ...Item) (AppendResult, error) {
	return c.AppendWith(ctx, id, AppendOptions{}, items...)
}

// AppendWith is Append with a precondition or an idempotency key (see
// AppendOptions).
func (c *Client) AppendWith(ctx context.Context, id string, o AppendOptions, items ...Item) (AppendResult, error) {
	if items == nil {
		items = []Item{} // the server answers an empty batch invalid_argument
	}
	data, err := json.Marshal(map[string][]Item{"items": items})
	if err != nil {
		return AppendResult{}, fmt.Errorf("client: append to %s: %w", id, err)
	}
	return c.appendBody(ctx, id, o, "application/json", bytes.NewReader(data))
}

func (c *Client) appendBody(ctx context.Context, id string, o AppendOptions, contentType string, body io.Reader) (AppendResult, error) {
	path, err := threadPath(id, "/items")
	if err != nil {
		return AppendResult{}, err
	}
	o.IdempotencyKey = c.key(o.IdempotencyKey)
	resp, err := c.requestWith(ctx, "POST", path, nil, o.header(), contentType, body, http.StatusOK)
	if err != nil {
		return AppendResult{}, err
	}
	defer resp.Body.Close()
	var res AppendResult
	err = json.NewDecoder(capped(resp.Body, c.limit)).Decode(&res)
	drain(resp.Body)
	if err != nil {
		return AppendResult{}, fmt.Errorf("client: append to %s: read answer: %w", id, err)
	}
	return res, nil
}

// AppendLines appends complete rollout lines, sent as NDJSON and kept byte
// for byte (the server inserts a timestamp into a line without one). A
// line must not contain a newline, nor end with a carriage return (the
// server would take it for half of a CRLF and drop it), or the call fails
// with ErrInvalidArgument and sends no request; a carriage return inside a
// line, JSON white space, is kept. Errors name a line by its
// position among lines counted from 1, as the server names a line of the
// body.
func (c *Client) AppendLines(ctx context.Context, id string, lines ...[]byte) (AppendResult, error) {
	return c.AppendLinesWith(ctx, id, AppendOptions{}, lines...)
}

// AppendLinesWith is AppendLines with a precondition or an idempotency
// key (see AppendOptions).
func (c *Client) AppendLinesWith(ctx context.Context, id string, o AppendOptions, lines ...[]byte) (AppendResult, error) {
	var body bytes.Buffer
	for i, l := range lines {
		if bytes.IndexByte(l, '\n') >= 0 {
			return AppendResult{}, fmt.Errorf("client: append to %s: line %d contains a newline: %w", id, i+1, ErrInvalidArgument)
		}
		if bytes.HasSuffix(l, []byte("\r")) {
			return AppendResult{}, fmt.Errorf("client: append to %s: line %d ends with a carriage return: %w", id, i+1, ErrInvalidArgument)
		}
		body.Write(l)
		body.WriteByte('\n')
	}
	return c.appendBody(ctx, id, o, "application/x-ndjson", &body)
}

// ReadItems returns thread id's history as raw NDJSON bytes (the rollout
// file's own lines), from counted user message from on; from < 0 reads
// the whole history. The history ends at the thread's size when the call
// is made. The caller closes the reader; a stream the server cut short
// ends with an error.
func (c *Client) ReadItems(ctx context.Context, id string, from int) (io.ReadCloser, error) {
	q := url.Values{}
	if from >= 0 {
		q.Set("from_user_message", strconv.Itoa(from))
	}
	path, err := threadPath(id, "/items")
	if err != nil {
		return nil, err
	}
	resp, err := c.request(ctx, "GET", path, q, "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ReadItemsAfter returns thread id's history from byte offset on, as raw
// NDJSON bytes, to the thread's size when the call is made: what was
// appended since a reader stopped at offset (an AppendResult's offsets,
// HistorySize, or where a Follow's End left off). offset must be 0, the
// thread's size or the start of one of its lines; otherwise the call
// fails with ErrInvalidArgument. Unlike Follow, the reader ends. The
// caller closes it; a stream the server cut short ends with an error.
func (c *Client) ReadItemsAfter(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("client: read %s from offset %d: %w", id, offset, ErrInvalidArgument)
	}
	path, err := threadPath(id, "/items")
	if err != nil {
		return nil, err
	}
	q := url.Values{"from_offset": {strconv.FormatInt(offset, 10)}}
	resp, err := c.request(ctx, "GET", path, q, "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Items iterates over thread id's history from counted user message from
// on (from < 0: the whole history), one Line per non-blank line. A request
// or stream failure is yielded as the last element, and so is a stream
// that ends inside a line (io.ErrUnexpectedEOF), and ctx's error once ctx
// is done.
func (c *Client) Items(ctx context.Context, id string, from int) iter.Seq2[Line, error] {
	return c.lines(ctx, func() (io.ReadCloser, error) { return c.ReadItems(ctx, id, from) })
}

// Turns returns thread id's counted user messages, in order; TurnsPage
// returns them a page at a time.
func (c *Client) Turns(ctx context.Context, id string) ([]Turn, error) {
	var body struct {
		Turns []Turn `json:"turns"`
	}
	return body.Turns, c.callThread(ctx, "GET", id, "/turns", nil, nil, http.StatusOK, &body)
}

// ReadTurn returns turn k of thread id as raw NDJSON: from user message k
// up to user message k+1, or to the end. The caller closes the reader.
func (c *Client) ReadTurn(ctx context.Context, id string, k int) (io.ReadCloser, error) {
	path, err := threadPath(id, "/turns/", strconv.Itoa(k))
	if err != nil {
		return nil, err
	}
	resp, err := c.request(ctx, "GET", path, nil, "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Turn iterates over the lines of turn k of thread id, as Items does.
// Line offsets count from the turn's start, Turns()[k].Offset.
func (c *Client) Turn(ctx context.Context, id string, k int) iter.Seq2[Line, error] {
	return c.lines(ctx, func() (io.ReadCloser, error) { return c.ReadTurn(ctx, id, k) })
}

// TurnOptions describe one complete user turn for AppendTurn.
type TurnOptions struct {
	Prompt string `json:"prompt"`
	Answer string `json:"answer"`
	TurnID string `json:"turn_id,omitempty"` // a new UUID when empty; one a turn of the history has already fails with ErrConflict
	Model  string `json:"model,omitempty"`
	// IdempotencyKey, when not empty, names the turn as
	// AppendOptions.IdempotencyKey names an append.
	IdempotencyKey string `json:"-"`
	// ExpectedSize, when not zero, is the history size the thread must
	// have, as AppendOptions.ExpectedSize says for an append: otherwise
	// the call fails with ErrSizeMismatch and nothing is written.
	ExpectedSize int64 `json:"-"`
}

// AppendTurn appends one complete user turn to thread id as Codex writes
// one (POST /v1/threads/{id}/turns), so Codex lists and shows it.
func (c *Client) AppendTurn(ctx context.Context, id string, o TurnOptions) (AppendResult, error) {
	path, err := threadPath(id, "/turns")
	if err != nil {
		return AppendResult{}, err
	}
	safe := AppendOptions{ExpectedSize: o.ExpectedSize, IdempotencyKey: c.key(o.IdempotencyKey)}
	var res AppendResult
	return res, c.callWith(ctx, "POST", path, nil, safe.header(), o, http.StatusOK, &res)
}

// ReadTurnByID returns the Codex turn turnID of thread id as raw NDJSON,
// from its first start line through its task_complete, and where it lies
// in the history. The caller closes the reader. A blank turnID fails with
// ErrInvalidArgument and sends no request.
func (c *Client) ReadTurnByID(ctx context.Context, id, turnID string) (io.ReadCloser, TurnSpan, error) {
	path, err := threadPath(id, "/turns/by-id/", url.PathEscape(turnID))
	if err != nil {
		return nil, TurnSpan{}, err
	}
	if strings.TrimSpace(turnID) == "" {
		return nil, TurnSpan{}, fmt.Errorf("%w: turn id %q is blank", ErrInvalidArgument, turnID)
	}
	resp, err := c.request(ctx, "GET", path, nil, "", nil, http.StatusOK)
	if err != nil {
		return nil, TurnSpan{}, err
	}
	span, err := turnSpan(resp.Header)
	if err != nil {
		resp.Body.Close()
		return nil, TurnSpan{}, fmt.Errorf("client: turn %q of thread %s: %w", turnID, id, err)
	}
	return resp.Body, span, nil
}

// turnSpan reads the Turn-* headers of an answer of GET
// /v1/threads/{id}/turns/by-id/{turn}.
func turnSpan(h http.Header) (TurnSpan, error) {
	offset, errOffset := intHeader(h, "Turn-Offset")
	end, errEnd := intHeader(h, "Turn-End")
	userMessage, errUserMessage := intHeader(h, "Turn-User-Message")
	if err := cmp.Or(errOffset, errEnd, errUserMessage); err != nil {
		return TurnSpan{}, err
	}
	return TurnSpan{Offset: offset, End: end, UserMessage: int(userMessage), Status: h.Get("Turn-Status")}, nil
}

// intHeader returns header name of h as a decimal integer.
func intHeader(h http.Header, name string) (int64, error) {
	n, err := strconv.ParseInt(h.Get(name), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad %s header %q", name, h.Get(name))
	}
	return n, nil
}

// lines iterates over the lines of the stream open returns, closing it
// when the iteration ends. Once ctx is done it yields ctx's error, not the
// lines Lines read ahead.
func (c *Client) lines(ctx context.Context, open func() (io.ReadCloser, error)) iter.Seq2[Line, error] {
	return func(yield func(Line, error) bool) {
		body, err := open()
		if err != nil {
			yield(Line{}, err)
			return
		}
		defer body.Close()
		for l, err := range linesWithin(body, c.limit) {
			if ctx.Err() != nil {
				yield(Line{}, fmt.Errorf("client: history stream: %w", ctx.Err()))
				return
			}
			if !yield(l, err) {
				return
			}
		}
	}
}

// Lines iterates over the rollout lines of r, an NDJSON history as
// ReadItems returns it, one Line per non-blank line with offsets counted
// from r's start. A read error is yielded as the last element, and so is
// io.ErrUnexpectedEOF when r ends inside a line: histories hold complete
// lines only. So is an error matching ErrAnswerTooLarge for a line longer
// than DefaultMaxAnswer bytes.
func Lines(r io.Reader) iter.Seq2[Line, error] { return linesWithin(r, DefaultMaxAnswer) }

// linesWithin is Lines with lines of at most limit bytes.
func linesWithin(r io.Reader, limit int64) iter.Seq2[Line, error] {
	return func(yield func(Line, error) bool) {
		br := bufio.NewReaderSize(r, 64<<10)
		var offset int64
		for {
			raw, err := readLine(br, limit)
			if len(raw) > 0 && raw[len(raw)-1] != '\n' {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				yield(Line{}, fmt.Errorf("client: history stream: %w", err))
				return
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Line{}, fmt.Errorf("client: history stream: %w", err))
				return
			}
			start := offset
			offset += int64(len(raw))
			content := raw[:len(raw)-1] // a "\r" before the newline is the line's
			if len(bytes.TrimSpace(content)) == 0 {
				continue
			}
			if !yield(ParseLine(content, start), nil) {
				return
			}
		}
	}
}

// ParseLine returns the Line for raw (without its newline) starting at
// offset, reading its envelope when raw is a JSON object.
func ParseLine(raw []byte, offset int64) Line {
	l := Line{Offset: offset, Raw: raw}
	var env struct {
		Timestamp string          `json:"timestamp"`
		Type      string          `json:"type"`
		Payload   json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(raw, &env) == nil {
		l.Timestamp, l.Type, l.Payload = env.Timestamp, env.Type, env.Payload
	}
	return l
}

// Fork creates a thread from thread id's history (the whole of it, or
// the part before o.BeforeUserMessage) and returns it. A fork point past
// the parent's user messages fails with ErrOutOfRange; the *Error's
// UserMessages says how many there are.
func (c *Client) Fork(ctx context.Context, id string, o ForkOptions) (Thread, error) {
	path, err := threadPath(id, "/fork")
	if err != nil {
		return Thread{}, err
	}
	var t Thread
	return t, c.callWith(ctx, "POST", path, nil, keyHeader(c.key(o.IdempotencyKey)), o, http.StatusCreated, &t)
}

// keyHeader returns the Idempotency-Key header of key (nil for none).
func keyHeader(key string) http.Header {
	if key == "" {
		return nil
	}
	return http.Header{"Idempotency-Key": {key}}
}

// RevertOptions say where Revert cuts a thread back: before the Codex turn
// BeforeTurnID, or before counted user message *BeforeUserMessage. Set one.
type RevertOptions struct {
	BeforeTurnID      string `json:"before_turn_id,omitempty"`
	BeforeUserMessage *int   `json:"before_user_message,omitempty"`
}

// Revert cuts thread id back before a turn, as Codex's thread/revert does
// (POST /v1/threads/{id}/revert): a new segment file of the thread, whose
// history is the old one before the cut; appends go to it.
func (c *Client) Revert(ctx context.Context, id string, o RevertOptions) (Thread, error) {
	var t Thread
	return t, c.callThread(ctx, "POST", id, "/revert", nil, o, http.StatusOK, &t)
}

// Ancestors returns thread id's fork ancestors, nearest first.
func (c *Client) Ancestors(ctx context.Context, id string) ([]Relative, error) {
	var body struct {
		Ancestors []Relative `json:"ancestors"`
	}
	return body.Ancestors, c.callThread(ctx, "GET", id, "/ancestors", nil, nil, http.StatusOK, &body)
}

// Descendants returns every thread forked from thread id, transitively.
func (c *Client) Descendants(ctx context.Context, id string) ([]Relative, error) {
	var body struct {
		Descendants []Relative `json:"descendants"`
	}
	return body.Descendants, c.callThread(ctx, "GET", id, "/descendants", nil, nil, http.StatusOK, &body)
}

// Spawns returns thread id's sub-agent lineage (GET
// /v1/threads/{id}/spawns): the threads that spawned it and those it
// spawned, transitively. A server whose backend does not track spawns
// fails with ErrNotSupported.
func (c *Client) Spawns(ctx context.Context, id string) (Spawns, error) {
	var spawns Spawns
	return spawns, c.callThread(ctx, "GET", id, "/spawns", nil, nil, http.StatusOK, &spawns)
}

// Tree returns the fork tree thread id belongs to.
func (c *Client) Tree(ctx context.Context, id string) (Tree, error) {
	var tree Tree
	return tree, c.callThread(ctx, "GET", id, "/tree", nil, nil, http.StatusOK, &tree)
}

// Search runs a full-text search over user messages and returns the first
// page of hits, best matches first: o.Limit of them at most (20 when 0).
// SearchPage returns the NextCursor that gets the next page.
func (c *Client) Search(ctx context.Context, o SearchOptions) ([]SearchHit, error) {
	page, err := c.SearchPage(ctx, o)
	return page.Hits, err
}

// SearchPage returns one page of hits and the cursor of the next. A query
// that does not parse fails with ErrInvalidQuery.
func (c *Client) SearchPage(ctx context.Context, o SearchOptions) (SearchPage, error) {
	q := url.Values{"q": {o.Query}}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Archived != "" {
		q.Set("archived", string(o.Archived))
	}
	for name, v := range map[string]string{"cwd": o.Cwd, "source": o.Source, "thread": o.ThreadID, "cursor": o.Cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	var page SearchPage
	return page, c.call(ctx, "GET", "/v1/search", q, nil, http.StatusOK, &page)
}

// tooLarge is the error of an answer past limit bytes.
func tooLarge(limit int64) error {
	return fmt.Errorf("%w: more than %d bytes (WithMaxAnswer)", ErrAnswerTooLarge, limit)
}

// capped returns r, failing with ErrAnswerTooLarge once it holds more than
// limit bytes.
func capped(r io.Reader, limit int64) io.Reader {
	return &cappedReader{r: r, left: limit, limit: limit}
}

type cappedReader struct {
	r           io.Reader
	left, limit int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 { // at the limit: one byte more is too many
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, tooLarge(c.limit)
		}
		return 0, err
	}
	p = p[:min(int64(len(p)), c.left)]
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// readLine reads br through its next newline, as ReadBytes does, and
// fails with ErrAnswerTooLarge once the line holds more than limit bytes.
func readLine(br *bufio.Reader, limit int64) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if int64(len(line))+int64(len(frag)) > limit {
			return nil, tooLarge(limit)
		}
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}
