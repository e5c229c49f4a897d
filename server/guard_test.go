package server

import "testing"

func TestHostPolicy(t *testing.T) {
	tests := []struct {
		name   string
		listen string
		allow  []string
		host   string
		want   bool
	}{
		{"loopback IP", "127.0.0.1:7878", nil, "127.0.0.1:7878", true},
		{"localhost", "127.0.0.1:7878", nil, "localhost:7878", true},
		{"localhost any case", "127.0.0.1:7878", nil, "LocalHost:7878", true},
		{"IPv6 loopback", "127.0.0.1:7878", nil, "[::1]:7878", true},
		{"other loopback", "127.0.0.1:7878", nil, "127.0.0.2:7878", true},
		{"wrong port", "127.0.0.1:7878", nil, "localhost:8080", false},
		{"no port means 80", "127.0.0.1:7878", nil, "localhost", false},
		{"rebinding name", "127.0.0.1:7878", nil, "evil.example:7878", false},
		{"localhost suffix", "127.0.0.1:7878", nil, "localhost.evil.example:7878", false},
		{"empty", "127.0.0.1:7878", nil, "", false},
		{"LAN IP on loopback server", "127.0.0.1:7878", nil, "192.168.1.5:7878", false},
		{"listen IP", "192.168.1.5:7878", nil, "192.168.1.5:7878", true},
		{"any IP on 0.0.0.0", "0.0.0.0:7878", nil, "10.0.0.9:7878", true},
		{"name on 0.0.0.0", "0.0.0.0:7878", nil, "evil.example:7878", false},
		{"any IP on [::]", "[::]:7878", nil, "[fe80::1]:7878", true},
		{"allowed name any port", "127.0.0.1:7878", []string{"spool.internal"}, "spool.internal:443", true},
		{"allowed name no port", "127.0.0.1:7878", []string{"spool.internal"}, "spool.internal", true},
		{"allowed host:port", "127.0.0.1:7878", []string{"spool.internal:9000"}, "spool.internal:9000", true},
		{"allowed host:port other port", "127.0.0.1:7878", []string{"spool.internal:9000"}, "spool.internal:9001", false},
		{"unknown listen address", "", nil, "localhost:1234", true},
		{"unknown listen address, name", "", nil, "evil.example:1234", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newHostPolicy(tt.listen, tt.allow).allows(tt.host); got != tt.want {
				t.Fatalf("listening on %q allowing %q: allows(%q) = %v, want %v", tt.listen, tt.allow, tt.host, got, tt.want)
			}
		})
	}
}

func TestBodyBudget(t *testing.T) {
	b := &bodyBudget{limit: 100}
	if !b.acquire(60) || !b.acquire(40) {
		t.Fatal("acquire within the limit failed")
	}
	if b.acquire(1) {
		t.Fatal("acquire past the limit succeeded")
	}
	b.release(40)
	if got := b.inUse(); got != 60 {
		t.Fatalf("inUse = %d, want 60", got)
	}
	if !b.acquire(40) {
		t.Fatal("acquire after release failed")
	}
}

// TestBodyWeight: a whole turn's body counts four times its size in the
// budget of bodies in flight, less when the budget holds fewer than four
// bodies of the largest size (so that one such turn alone still fits);
// other bodies count their size.
func TestBodyWeight(t *testing.T) {
	tests := []struct {
		pattern         string
		maxBody, budget int64
		want            int64
	}{
		{turnsPattern, 1000, 4000, 4},
		{turnsPattern, 1000, 10000, 4},
		{turnsPattern, 1000, 2500, 2},
		{turnsPattern, 1000, 1000, 1},
		{appendPattern, 1000, 4000, 1},
		{"POST /v1/threads", 1000, 4000, 1},
	}
	for _, tt := range tests {
		s := &Server{cfg: Config{MaxBody: tt.maxBody}, budget: &bodyBudget{limit: tt.budget}}
		if got := s.bodyWeight(tt.pattern); got != tt.want {
			t.Errorf("bodyWeight(%q) with -max-body %d and -max-body-in-flight %d = %d, want %d", tt.pattern, tt.maxBody, tt.budget, got, tt.want)
		}
	}
}
