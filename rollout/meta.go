package rollout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotSessionMeta reports a line given to ParseSessionMeta that is not a
// session_meta line.
var ErrNotSessionMeta = errors.New("not a session_meta line")

// ErrUnknownHistoryMode reports a session_meta whose history_mode is neither
// "legacy" nor "paginated". Codex refuses to load such a thread.
var ErrUnknownHistoryMode = errors.New("rollout: unknown history_mode")

// HistoryMode is a thread's history_mode: how its file holds its history.
type HistoryMode string

// The history modes Codex 0.169 knows. A meta without history_mode is
// HistoryLegacy.
const (
	// HistoryLegacy: the file holds the whole history, lines without
	// ordinals; forks copy their parent's lines.
	HistoryLegacy HistoryMode = "legacy"
	// HistoryPaginated: every line carries a top-level ordinal, visible
	// items are item_completed events, and forks may reference their base
	// (HistoryBase) instead of copying it.
	HistoryPaginated HistoryMode = "paginated"
)

// ParseHistoryMode returns the mode named by s; "" is HistoryLegacy.
// Any other name wraps ErrUnknownHistoryMode.
func ParseHistoryMode(s string) (HistoryMode, error) {
	switch m := HistoryMode(s); m {
	case "", HistoryLegacy:
		return HistoryLegacy, nil
	case HistoryPaginated:
		return m, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownHistoryMode, s)
}

// HistoryBase is the history_base of a reference fork or a revert segment:
// the thread's history is the base thread's file up to EndByteOffset (the
// lines with ordinals below EndOrdinalExclusive), then the file's own
// lines. The base is another thread (a fork) or an earlier segment of the
// same thread (a revert).
type HistoryBase struct {
	ThreadID            string `json:"thread_id"`
	EndOrdinalExclusive int64  `json:"end_ordinal_exclusive"`
	EndByteOffset       int64  `json:"end_byte_offset"`
}

// defaultSource is what Codex assumes when a meta has no source.
const defaultSource = "vscode"

// SessionMeta is the payload of a session_meta line, reduced to the fields
// spool indexes. Source is normalised: a string source as is, an object
// source as its compact JSON text, and "vscode" when missing.
type SessionMeta struct {
	ID            string   `json:"id"`
	ForkedFromID  string   `json:"forked_from_id,omitempty"`
	Timestamp     string   `json:"timestamp"`
	Cwd           string   `json:"cwd"`
	Originator    string   `json:"originator"`
	CLIVersion    string   `json:"cli_version"`
	Source        string   `json:"source"`
	ModelProvider string   `json:"model_provider,omitempty"`
	Git           *GitInfo `json:"git,omitempty"`
	// ForkPoint is spool's record of where a fork was cut (nil for threads
	// that are not forks, and for forks that Codex wrote).
	ForkPoint *ForkPoint `json:"spool_fork_point,omitempty"`
	// CreationKey is the idempotency key of the start or fork that made
	// the thread, as spool wrote it (nil for none, and for one that cannot
	// be the thread's: see ParseSessionMeta).
	CreationKey *CreationKey `json:"spool_creation_key,omitempty"`
	// HistoryMode is "" when the meta has none (read it as HistoryLegacy),
	// else HistoryLegacy or HistoryPaginated.
	HistoryMode HistoryMode `json:"history_mode,omitempty"`
	// HistoryBase is set in a reference fork or revert segment.
	HistoryBase *HistoryBase `json:"history_base,omitempty"`
	// ForkedFromOrdinalExclusive is the parent ordinal a Codex paginated
	// fork was cut before (nil when absent).
	ForkedFromOrdinalExclusive *int64 `json:"forked_from_ordinal_exclusive,omitempty"`
	// SpawnParentID is source.subagent.thread_spawn.parent_thread_id, the
	// thread that spawned this sub-agent ("" when not a spawned sub-agent,
	// or when it names this thread; ForkedFromID likewise).
	SpawnParentID string `json:"-"`
}

// Mode returns m's history mode, HistoryLegacy when it has none.
func (m SessionMeta) Mode() HistoryMode {
	if m.HistoryMode == "" {
		return HistoryLegacy
	}
	return m.HistoryMode
}

// FirstOrdinal returns the top-level ordinal of the meta line that opens a
// paginated file holding m: the end_ordinal_exclusive of its history_base
// when it continues one, else 0. A reference fork and a revert segment
// number their lines on from the cut, as Codex 0.169 writes them: Codex
// skips a line whose ordinal is not above the history's before it, so a
// fork numbered from 0 would hide its own turns from Codex.
func (m SessionMeta) FirstOrdinal() int64 {
	if m.HistoryBase == nil {
		return 0
	}
	return m.HistoryBase.EndOrdinalExclusive
}

// GitInfo is the optional git object of a session_meta payload.
type GitInfo struct {
	CommitHash    string `json:"commit_hash,omitempty"`
	Branch        string `json:"branch,omitempty"`
	RepositoryURL string `json:"repository_url,omitempty"`
}

// ForkPoint records where a fork was cut from its parent: before the
// parent's user message UserMessage (-1 for a whole copy) at byte offset
// ParentOffset of the parent's file.
type ForkPoint struct {
	UserMessage  int   `json:"user_message"`
	ParentOffset int64 `json:"parent_offset"`
	// CopiedLines is how many lines after the fork's meta line it was
	// made with (the lines it copied, its ancestors' metas included); 0
	// when the meta does not say, as in forks spool made before it
	// recorded them: then Copied counts by ParentOffset, which holds for
	// a legacy copy, whose bytes are its parent's as they were.
	CopiedLines int64 `json:"copied_lines,omitempty"`
	// Ancestors are the fork's ancestors, nearest first (its parent
	// first), as the store that made it (or rewrote its file) had them:
	// what a rebuild gives the fork when its file and the other files no
	// longer name them all (an ancestor deleted since, whose meta a
	// self-contained rewrite cannot copy). Empty in forks spool made
	// before it recorded them, and in forks Codex wrote.
	Ancestors []string `json:"ancestors,omitempty"`
}

// CreationKey is the idempotency key a start or fork was asked with (the
// Idempotency-Key header), stated in the meta of the thread it made, so
// that an index that lost the key (a crash before the thread's row was
// committed, a rebuild) learns it again from the file.
type CreationKey struct {
	// Scope is "" for a start and the parent's id for a fork (the
	// meta's forked_from_id).
	Scope string `json:"scope"`
	Key   string `json:"key"`
	// RequestSHA256 is the hex SHA-256 of the request's options, which a
	// retry must repeat.
	RequestSHA256 string `json:"request_sha256"`
	// CreatedAt and ExpiresAt are Unix milliseconds: the key answers
	// retries from the thread's creation until it expires.
	CreatedAt int64 `json:"created_at"`
	ExpiresAt int64 `json:"expires_at"`
}

// NewCreationKey returns the key a start (scope "") or a fork (scope: its
// parent's id) asked with key states in its meta: the request's SHA-256
// hash, created at created and kept for ttl. It returns nil for no key.
func NewCreationKey(scope, key string, hash []byte, created time.Time, ttl time.Duration) *CreationKey {
	if key == "" {
		return nil
	}
	return &CreationKey{Scope: scope, Key: key, RequestSHA256: hex.EncodeToString(hash),
		CreatedAt: created.UnixMilli(), ExpiresAt: created.Add(ttl).UnixMilli()}
}

// maxCreationKeyLen bounds, in bytes, the key a meta may state.
const maxCreationKeyLen = 1024

// maxCreationKeyTTL is the longest a key a meta states is kept, from its
// creation to its expiry: what spool keeps the keys of starts and forks
// for (manager.IdempotencyTTL, pgstore.KeyTTL).
const maxCreationKeyTTL = 24 * time.Hour

// creationKeySkew is how much later than its meta's timestamp a key may
// say it was created: a fork reads the clock for its key before it does
// for its meta, so only a clock stepped back between the two puts the
// key later.
const creationKeySkew = time.Minute

// statableCreationKey reports whether a meta can state key as it is, so
// that reading the meta gives key back: a non-empty key of valid UTF-8 (a
// JSON string holds no other bytes) of at most maxCreationKeyLen bytes.
func statableCreationKey(key string) bool {
	return key != "" && len(key) <= maxCreationKeyLen && utf8.ValidString(key)
}

// creationKeyOf decodes raw, the spool_creation_key member of the meta
// stamped ts of a thread forked from parent ("" for none), or returns nil
// when it is absent or cannot be that thread's: not an object of these
// members, an empty or overlong key, a hash that is not 64 lower-case hex
// digits, an expiry not after the creation or further from it than
// maxCreationKeyTTL, a creation later than ts (but creationKeySkew) or a ts
// that is no time, or a scope other than parent (a member copied from
// another meta). Were a key created later than its thread, or kept longer
// than a key is, read, it could hold its name from every thread a start
// or fork makes with it (of two threads stating one key, the one whose
// key expires last has it).
func creationKeyOf(raw json.RawMessage, parent, ts string) *CreationKey {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var k CreationKey
	if json.Unmarshal(raw, &k) != nil {
		return nil
	}
	hash, err := hex.DecodeString(k.RequestSHA256)
	switch {
	case !statableCreationKey(k.Key),
		err != nil || len(hash) != sha256.Size || hex.EncodeToString(hash) != k.RequestSHA256,
		k.CreatedAt <= 0 || k.ExpiresAt <= k.CreatedAt,
		k.ExpiresAt-k.CreatedAt > maxCreationKeyTTL.Milliseconds():
		return nil
	}
	if stamped, ok := ParseTimestamp(ts); !ok || k.CreatedAt > stamped.Add(creationKeySkew).UnixMilli() {
		return nil
	}
	if k.Scope != "" {
		scope, err := ParseID(k.Scope)
		if err != nil {
			return nil
		}
		k.Scope = scope
	}
	if k.Scope != parent {
		return nil
	}
	return &k
}

// AncestryOf returns the ancestry a fork's own meta states, fp's
// Ancestors, when it completes the ancestry found from the files and the
// index (found: the same parent first, then some of the stated ancestors
// in their order, others missing with a deleted ancestor's meta or row);
// found otherwise. An ancestry the files state in full, or otherwise,
// stays theirs, and a thread they name no parent of has none.
func (fp *ForkPoint) AncestryOf(found []string) []string {
	if fp == nil || len(found) == 0 || len(fp.Ancestors) <= len(found) || fp.Ancestors[0] != found[0] {
		return found
	}
	rest := found[1:]
	for _, id := range fp.Ancestors[1:] {
		if len(rest) > 0 && rest[0] == id {
			rest = rest[1:]
		}
	}
	if len(rest) > 0 {
		return found // an ancestor the meta does not state, or out of order
	}
	return slices.Clone(fp.Ancestors)
}

// Copied reports whether the line numbered line (the meta line is 0)
// that starts at byte offset of a copy fork's file, whose meta line ends
// at metaEnd, is one the fork was made with: a copy of its parent's.
func (fp ForkPoint) Copied(line, offset, metaEnd int64) bool {
	if fp.CopiedLines > 0 {
		return line <= fp.CopiedLines
	}
	return offset < metaEnd+fp.ParentOffset
}

// metaLine is how a session_meta line is decoded; nullable members are
// pointers or raw so that null and missing read as empty.
type metaLine struct {
	Payload struct {
		ID            string          `json:"id"`
		ForkedFromID  *string         `json:"forked_from_id"`
		Timestamp     *string         `json:"timestamp"`
		Cwd           *string         `json:"cwd"`
		Originator    *string         `json:"originator"`
		CLIVersion    *string         `json:"cli_version"`
		Source        json.RawMessage `json:"source"`
		ModelProvider *string         `json:"model_provider"`
		Git           *GitInfo        `json:"git"`
		ForkPoint     *ForkPoint      `json:"spool_fork_point"`
		CreationKey   json.RawMessage `json:"spool_creation_key"`
		HistoryMode   *string         `json:"history_mode"`
		HistoryBase   *HistoryBase    `json:"history_base"`
		ForkedFromOrd *int64          `json:"forked_from_ordinal_exclusive"`
	} `json:"payload"`
}

// wrongTypeError reports a member of a meta whose value is valid JSON of
// another type than the member's ("id": 5). It wraps ErrInvalidJSON, as
// the line's other decoding errors do, without saying so: the JSON is
// valid.
type wrongTypeError struct {
	member    string // its path below the payload, dot-separated: "git.branch"
	got, want string // JSON types with their article: "a number", "an object"
}

func (e *wrongTypeError) Error() string {
	return fmt.Sprintf("member %q is %s, want %s", e.member, e.got, e.want)
}

func (e *wrongTypeError) Unwrap() error { return ErrInvalidJSON }

// memberTypeError is the wrongTypeError of the payload member e names.
func memberTypeError(e *json.UnmarshalTypeError) *wrongTypeError {
	member := e.Field
	if member != "payload" {
		member = strings.TrimPrefix(member, "payload.")
	}
	want := "an integer"
	switch t := e.Type; t.Kind() {
	case reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.String:
		want = "a string"
	case reflect.Bool:
		want = "a bool"
	case reflect.Slice, reflect.Array:
		want = "an array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		want = "an object"
	}
	value, number, _ := strings.Cut(e.Value, " ") // "number 1.5": one the type cannot hold
	got := "a " + value
	if value == "array" || value == "object" {
		got = "an " + value
	}
	if number != "" {
		got += " (" + number + ")"
	}
	return &wrongTypeError{member: member, got: got, want: want}
}

// metaFields are the json names of metaLine's payload fields: the members
// ParseSessionMeta decodes (prunePayload).
var metaFields = []string{
	"id", "forked_from_id", "timestamp", "cwd", "originator", "cli_version",
	"source", "model_provider", "git", "spool_fork_point", "spool_creation_key",
	"history_mode", "history_base", "forked_from_ordinal_exclusive",
}

// spawnSource is the shape of a sub-agent's spawn source.
type spawnSource struct {
	Subagent *struct {
		ThreadSpawn *struct {
			ParentThreadID string `json:"parent_thread_id"`
		} `json:"thread_spawn"`
	} `json:"subagent"`
}

// maxAncestors bounds the ancestry a meta may state (spool's forks nest
// no deeper than the history chains it follows).
const maxAncestors = 1000

// canonicalAncestors returns ids, the stated ancestry of thread self, in
// lower case, or nil when one is not a UUID, one names a thread twice or
// names self, or there are more than maxAncestors: a stated ancestry that
// cannot be one is not read at all (the index refuses a thread listed as
// its own ancestor, so reading one would leave the file unindexed).
func canonicalAncestors(self string, ids []string) []string {
	if len(ids) > maxAncestors {
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		canon, err := ParseID(id)
		if err != nil || canon == self || slices.Contains(out[:i], canon) {
			return nil
		}
		out[i] = canon
	}
	return out
}

// ParseSessionMeta decodes the payload of a session_meta line (the whole
// line, envelope included). It fails when the line is not a session_meta
// line (ErrNotSessionMeta, or the scanner's ErrInvalidJSON/ErrNotObject),
// when its id, forked_from_id or history_base.thread_id is not a UUID
// (ErrInvalidID), or when its history_mode is not one Codex knows
// (ErrUnknownHistoryMode). Ids are returned in lower case. Null members read
// as empty. A spool_fork_point ancestry that is not a list of distinct
// UUIDs other than id reads as none, and so does a spool_creation_key that
// cannot be the thread's (creationKeyOf).
func ParseSessionMeta(line []byte) (SessionMeta, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	res, err := scanLine(line)
	if err != nil {
		return SessionMeta{}, fmt.Errorf("parse session meta: %w", err)
	}
	if res.Type != TypeSessionMeta {
		return SessionMeta{}, fmt.Errorf("parse session meta: line type %q: %w", res.Type, ErrNotSessionMeta)
	}
	var ml metaLine
	if err := json.Unmarshal(prunePayload(line, metaFields), &ml); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return SessionMeta{}, fmt.Errorf("parse session meta: %w", memberTypeError(typeErr))
		}
		return SessionMeta{}, fmt.Errorf("parse session meta: %w: %v", ErrInvalidJSON, err)
	}
	p := ml.Payload
	id, err := ParseID(p.ID)
	if err != nil {
		return SessionMeta{}, fmt.Errorf("parse session meta id: %w", err)
	}
	m := SessionMeta{
		ID:            id,
		Timestamp:     deref(p.Timestamp),
		Cwd:           deref(p.Cwd),
		Originator:    deref(p.Originator),
		CLIVersion:    deref(p.CLIVersion),
		ModelProvider: deref(p.ModelProvider),
		Git:           p.Git,
		ForkPoint:     p.ForkPoint,
	}
	if fp := m.ForkPoint; fp != nil && len(fp.Ancestors) > 0 {
		fp.Ancestors = canonicalAncestors(id, fp.Ancestors)
	}
	if parent := deref(p.ForkedFromID); parent != "" {
		if m.ForkedFromID, err = ParseID(parent); err != nil {
			return SessionMeta{}, fmt.Errorf("parse session meta %s forked_from_id: %w", id, err)
		}
	}
	if m.ForkedFromID == id {
		m.ForkedFromID = "" // a thread is not its own fork parent
	}
	if m.Source, err = normaliseSource(p.Source); err != nil {
		return SessionMeta{}, fmt.Errorf("parse session meta %s source: %w", id, err)
	}
	if p.HistoryMode != nil {
		if _, err := ParseHistoryMode(*p.HistoryMode); err != nil || *p.HistoryMode == "" {
			return SessionMeta{}, fmt.Errorf("parse session meta %s: %w: %q", id, ErrUnknownHistoryMode, *p.HistoryMode)
		}
		m.HistoryMode = HistoryMode(*p.HistoryMode)
	}
	if b := p.HistoryBase; b != nil {
		base := *b
		if base.ThreadID, err = ParseID(b.ThreadID); err != nil {
			return SessionMeta{}, fmt.Errorf("parse session meta %s history_base: %w", id, err)
		}
		m.HistoryBase = &base
	}
	m.ForkedFromOrdinalExclusive = p.ForkedFromOrd
	m.CreationKey = creationKeyOf(p.CreationKey, m.ForkedFromID, m.Timestamp)
	if m.SpawnParentID = spawnParent(p.Source); m.SpawnParentID == id {
		m.SpawnParentID = "" // nor its own spawner
	}
	return m, nil
}

// ForkSource returns the source of a fork of a thread whose source is
// parent: the parent's, except that a fork of a spawned sub-agent is no
// sub-agent (Codex's thread/fork of one writes its client's source, vscode
// over app-server, and none of the spawn's fields), so it gets
// defaultSource, the source Codex reads when there is none.
func ForkSource(parent string) string {
	if SpawnParent(parent) != "" {
		return defaultSource
	}
	return parent
}

// SpawnParent returns the thread that spawned a sub-agent whose source is
// source, as SessionMeta.Source holds it (a name, or an object source as
// JSON): what ParseSessionMeta reads as SpawnParentID from a meta that
// NewSessionMetaLine wrote with that source. "" when it is no spawn.
func SpawnParent(source string) string {
	if source == "" || source[0] != '{' {
		return ""
	}
	return spawnParent(json.RawMessage(source))
}

// spawnParent returns source.subagent.thread_spawn.parent_thread_id of a
// raw source member in lower case, "" when the source is not a thread spawn
// or the parent is not a UUID (the source itself is kept either way).
func spawnParent(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return ""
	}
	var src spawnSource
	if json.Unmarshal(raw, &src) != nil || src.Subagent == nil || src.Subagent.ThreadSpawn == nil {
		return ""
	}
	id, err := ParseID(src.Subagent.ThreadSpawn.ParentThreadID)
	if err != nil {
		return ""
	}
	return id
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// normaliseSource turns the raw source member into SessionMeta.Source.
func normaliseSource(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return defaultSource, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// MetaPayload is what NewSessionMetaLine writes: the fields of a new
// thread's first line. Extra holds further payload members to write
// verbatim (e.g. agent_nickname, dynamic_tools); it may be nil. An Extra
// member named like one written from the fields (e.g. base_instructions,
// to copy a parent's value byte for byte) replaces that member's value in
// its place.
type MetaPayload struct {
	SessionMeta
	BaseInstructions string
	Extra            map[string]json.RawMessage
}

// NewSessionMetaLine returns the first line of a new thread (newline
// included) with the envelope timestamp ts (TimestampLayout) and the
// payload fields of m, in Codex's member order: id, forked_from_id (when
// set), timestamp, cwd, originator, cli_version, source, model_provider
// (null when empty), base_instructions ({"text":...} when
// m.BaseInstructions is set, else null), git, spool_fork_point,
// spool_creation_key,
// history_mode, forked_from_ordinal_exclusive and history_base (each when
// set), then the remaining Extra members sorted by name. A Source starting
// with '{' is written as the JSON object it holds. Errors wrap ErrInvalidID,
// ErrInvalidJSON, ErrRawNewline or ErrInvalidUTF8.
func NewSessionMetaLine(ts string, m MetaPayload) ([]byte, error) {
	id, err := ParseID(m.ID)
	if err != nil {
		return nil, fmt.Errorf("new session meta: %w", err)
	}
	if ts == "" {
		return nil, fmt.Errorf("new session meta %s: empty timestamp", id)
	}
	w := metaWriter{extra: m.Extra, used: make(map[string]bool)}
	w.buf = append(w.buf, `{"timestamp":`...)
	w.buf = appendString(w.buf, ts)
	w.buf = append(w.buf, `,"type":"session_meta","payload":{`...)
	w.str("id", id)
	if m.ForkedFromID != "" {
		parent, err := ParseID(m.ForkedFromID)
		if err != nil {
			return nil, fmt.Errorf("new session meta %s forked_from_id: %w", id, err)
		}
		w.str("forked_from_id", parent)
	}
	w.str("timestamp", m.Timestamp)
	w.str("cwd", m.Cwd)
	w.str("originator", m.Originator)
	w.str("cli_version", m.CLIVersion)
	switch src := m.Source; {
	case src == "":
		w.str("source", defaultSource)
	case src[0] == '{':
		w.raw("source", []byte(src))
	default:
		w.str("source", src)
	}
	if m.ModelProvider == "" {
		w.raw("model_provider", []byte("null"))
	} else {
		w.str("model_provider", m.ModelProvider)
	}
	if m.BaseInstructions == "" {
		w.raw("base_instructions", []byte("null"))
	} else {
		text := appendString([]byte(`{"text":`), m.BaseInstructions)
		w.raw("base_instructions", append(text, '}'))
	}
	if m.Git != nil {
		w.json("git", m.Git)
	}
	if m.ForkPoint != nil {
		w.json("spool_fork_point", m.ForkPoint)
	}
	if m.CreationKey != nil {
		w.json("spool_creation_key", m.CreationKey)
	}
	if m.HistoryMode != "" {
		if _, err := ParseHistoryMode(string(m.HistoryMode)); err != nil {
			return nil, fmt.Errorf("new session meta %s: %w", id, err)
		}
		w.str("history_mode", string(m.HistoryMode))
	}
	if m.ForkedFromOrdinalExclusive != nil {
		w.json("forked_from_ordinal_exclusive", *m.ForkedFromOrdinalExclusive)
	}
	if m.HistoryBase != nil {
		base := *m.HistoryBase
		if base.ThreadID, err = ParseID(base.ThreadID); err != nil {
			return nil, fmt.Errorf("new session meta %s history_base: %w", id, err)
		}
		w.json("history_base", base)
	}
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		if !w.used[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.raw(k, m.Extra[k])
	}
	w.buf = append(w.buf, "}}"...)
	if w.err != nil {
		return nil, fmt.Errorf("new session meta %s: %w", id, w.err)
	}
	line, err := EncodeLine(w.buf, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("new session meta %s: %w", id, err)
	}
	return line, nil
}

// metaWriter writes the members of a meta payload in order, letting Extra
// override a member's value in place.
type metaWriter struct {
	buf   []byte
	extra map[string]json.RawMessage
	used  map[string]bool // Extra members already written in place
	n     int             // members written
	err   error           // first invalid value
}

func (w *metaWriter) raw(name string, value []byte) {
	if v, ok := w.extra[name]; ok {
		value = v
		w.used[name] = true
	}
	value = bytes.TrimSpace(value)
	if !validJSON(value) && w.err == nil {
		w.err = fmt.Errorf("member %q: %w", name, ErrInvalidJSON)
	}
	if w.n > 0 {
		w.buf = append(w.buf, ',')
	}
	w.n++
	w.buf = appendString(w.buf, name)
	w.buf = append(w.buf, ':')
	w.buf = append(w.buf, value...)
}

func (w *metaWriter) str(name, value string) { w.raw(name, appendString(nil, value)) }

func (w *metaWriter) json(name string, v any) {
	b, err := json.Marshal(v)
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("member %q: %w", name, err)
	}
	w.raw(name, b)
}
