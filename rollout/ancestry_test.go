package rollout

import (
	"slices"
	"testing"
)

func TestAncestry(t *testing.T) {
	const a, b, c, d = "019b0000-0000-7000-8000-00000000000a", "019b0000-0000-7000-8000-00000000000b",
		"019b0000-0000-7000-8000-00000000000c", "019b0000-0000-7000-8000-00000000000d"
	meta := func(id, parent string) SessionMeta { return SessionMeta{ID: id, ForkedFromID: parent} }
	tests := []struct {
		name   string
		own    SessionMeta
		next   []SessionMeta // nil entry: a line that is no meta
		want   []string
		ending bool
	}{
		{"no parent", meta(d, ""), nil, nil, true},
		{"parent only", meta(d, c), nil, []string{c}, false},
		{"copy of a copy", meta(d, c), []SessionMeta{meta(c, b), meta(b, a), meta(a, "")}, []string{c, b, a}, true},
		{"upper case parent", meta(d, "019B0000-0000-7000-8000-00000000000C"), []SessionMeta{meta(c, b)}, []string{c, b}, false},
		{"another thread's meta ends it", meta(d, c), []SessionMeta{meta(b, a), meta(a, "")}, []string{c}, true},
		{"its own parent", meta(d, d), nil, nil, true},
		{"a cycle back to itself ends it", meta(d, c), []SessionMeta{meta(c, d)}, []string{c}, true},
		{"a loop back ends it", meta(d, c), []SessionMeta{meta(c, b), meta(b, c)}, []string{c, b}, true},
		{"a line between ends it", meta(d, c), []SessionMeta{{}, meta(c, b)}, []string{c}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chain Ancestry
			chain.Start(tt.own)
			for _, m := range tt.next {
				if m.ID == "" {
					chain.End()
					continue
				}
				chain.Observe(m)
			}
			if !slices.Equal(chain.IDs(), tt.want) || chain.Ended() != tt.ending {
				t.Errorf("IDs %v, ended %v; want %v, %v", chain.IDs(), chain.Ended(), tt.want, tt.ending)
			}
		})
	}
}
