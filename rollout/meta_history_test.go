package rollout

import (
	"errors"
	"testing"
)

func TestParseSessionMetaHistory(t *testing.T) {
	const id, parent = "01a21489-c4d2-79a3-aa8c-c7eaa9f820a2", "019dab90-0000-7000-8000-000000000001"
	ord := func(n int64) *int64 { return &n }
	tests := []struct {
		name        string
		payload     string
		wantMode    HistoryMode
		wantBase    *HistoryBase
		wantOrdinal *int64
		wantSpawn   string
		wantErr     error
	}{
		{name: "no mode", payload: `{"id":"` + id + `"}`},
		{name: "legacy", payload: `{"id":"` + id + `","history_mode":"legacy"}`, wantMode: HistoryLegacy},
		{name: "paginated", payload: `{"id":"` + id + `","history_mode":"paginated"}`, wantMode: HistoryPaginated},
		{name: "null mode", payload: `{"id":"` + id + `","history_mode":null}`},
		{name: "unknown mode", payload: `{"id":"` + id + `","history_mode":"columnar"}`, wantErr: ErrUnknownHistoryMode},
		{name: "empty mode", payload: `{"id":"` + id + `","history_mode":""}`, wantErr: ErrUnknownHistoryMode},
		{name: "mode not a string", payload: `{"id":"` + id + `","history_mode":1}`, wantErr: ErrInvalidJSON},
		{
			// As Codex 0.169 wrote a reference fork (compat: TestCodexReferenceFork).
			name:     "reference fork",
			payload:  `{"id":"` + id + `","forked_from_id":"` + parent + `","forked_from_ordinal_exclusive":8,"history_mode":"paginated","history_base":{"thread_id":"019DAB90-0000-7000-8000-000000000001","end_ordinal_exclusive":8,"end_byte_offset":1982}}`,
			wantMode: HistoryPaginated, wantBase: &HistoryBase{ThreadID: parent, EndOrdinalExclusive: 8, EndByteOffset: 1982}, wantOrdinal: ord(8),
		},
		{name: "bad base id", payload: `{"id":"` + id + `","history_base":{"thread_id":"../x","end_ordinal_exclusive":1,"end_byte_offset":2}}`, wantErr: ErrInvalidID},
		{name: "bad base offset", payload: `{"id":"` + id + `","history_base":{"thread_id":"` + parent + `","end_byte_offset":"x"}}`, wantErr: ErrInvalidJSON},
		{name: "spawned sub-agent", payload: `{"id":"` + id + `","source":{"subagent":{"thread_spawn":{"parent_thread_id":"019DAB90-0000-7000-8000-000000000001","depth":1}}}}`, wantSpawn: parent},
		{name: "spawn parent not a uuid", payload: `{"id":"` + id + `","source":{"subagent":{"thread_spawn":{"parent_thread_id":"p"}}}}`},
		{name: "other subagent kind", payload: `{"id":"` + id + `","source":{"subagent":"review"}}`},
		{name: "custom source", payload: `{"id":"` + id + `","source":{"custom":"atlas"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseSessionMeta([]byte(`{"timestamp":"t","type":"session_meta","payload":` + tt.payload + `}`))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ParseSessionMeta error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if m.HistoryMode != tt.wantMode {
				t.Fatalf("HistoryMode = %q, want %q", m.HistoryMode, tt.wantMode)
			}
			if (m.HistoryBase == nil) != (tt.wantBase == nil) || (m.HistoryBase != nil && *m.HistoryBase != *tt.wantBase) {
				t.Fatalf("HistoryBase = %+v, want %+v", m.HistoryBase, tt.wantBase)
			}
			if (m.ForkedFromOrdinalExclusive == nil) != (tt.wantOrdinal == nil) || (m.ForkedFromOrdinalExclusive != nil && *m.ForkedFromOrdinalExclusive != *tt.wantOrdinal) {
				t.Fatalf("ForkedFromOrdinalExclusive = %v, want %v", m.ForkedFromOrdinalExclusive, tt.wantOrdinal)
			}
			if m.SpawnParentID != tt.wantSpawn {
				t.Fatalf("SpawnParentID = %q, want %q", m.SpawnParentID, tt.wantSpawn)
			}
		})
	}
}

func TestSessionMetaMode(t *testing.T) {
	if got := (SessionMeta{}).Mode(); got != HistoryLegacy {
		t.Fatalf("Mode of a meta without history_mode = %q, want legacy", got)
	}
	if got := (SessionMeta{HistoryMode: HistoryPaginated}).Mode(); got != HistoryPaginated {
		t.Fatalf("Mode = %q, want paginated", got)
	}
	for _, s := range []string{"", "legacy", "paginated"} {
		if _, err := ParseHistoryMode(s); err != nil {
			t.Errorf("ParseHistoryMode(%q) = %v", s, err)
		}
	}
	if _, err := ParseHistoryMode("Paginated"); !errors.Is(err, ErrUnknownHistoryMode) {
		t.Errorf("ParseHistoryMode(Paginated) = %v, want ErrUnknownHistoryMode", err)
	}
}

func TestNewSessionMetaLineHistory(t *testing.T) {
	const id, parent = "01a21489-c4d2-79a3-aa8c-c7eaa9f820a2", "019dab90-0000-7000-8000-000000000001"
	ord := int64(8)
	m := SessionMeta{ID: id, ForkedFromID: parent, Timestamp: "t", HistoryMode: HistoryPaginated,
		ForkedFromOrdinalExclusive: &ord, HistoryBase: &HistoryBase{ThreadID: parent, EndOrdinalExclusive: 8, EndByteOffset: 1982}}
	line, err := NewSessionMetaLine("t", MetaPayload{SessionMeta: m})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"timestamp":"t","type":"session_meta","payload":{"id":"01a21489-c4d2-79a3-aa8c-c7eaa9f820a2","forked_from_id":"019dab90-0000-7000-8000-000000000001","timestamp":"t","cwd":"","originator":"","cli_version":"","source":"vscode","model_provider":null,"base_instructions":null,"history_mode":"paginated","forked_from_ordinal_exclusive":8,"history_base":{"thread_id":"019dab90-0000-7000-8000-000000000001","end_ordinal_exclusive":8,"end_byte_offset":1982}}}` + "\n"
	if string(line) != want {
		t.Fatalf("NewSessionMetaLine =\n%s\nwant\n%s", line, want)
	}
	back, err := ParseSessionMeta(line)
	if err != nil || back.HistoryMode != HistoryPaginated || *back.HistoryBase != *m.HistoryBase || *back.ForkedFromOrdinalExclusive != 8 {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	bad := m
	bad.HistoryMode = "columnar"
	if _, err := NewSessionMetaLine("t", MetaPayload{SessionMeta: bad}); !errors.Is(err, ErrUnknownHistoryMode) {
		t.Fatalf("unknown mode: %v, want ErrUnknownHistoryMode", err)
	}
	bad = m
	bad.HistoryBase = &HistoryBase{ThreadID: "x"}
	if _, err := NewSessionMetaLine("t", MetaPayload{SessionMeta: bad}); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("bad base id: %v, want ErrInvalidID", err)
	}
}
