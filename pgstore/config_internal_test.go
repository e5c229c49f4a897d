package pgstore

import (
	"testing"
	"time"
)

// TestPoolConfigDefaults: spool's defaults fill in only what neither the
// DSN nor the environment sets.
func TestPoolConfigDefaults(t *testing.T) {
	tests := []struct {
		name        string
		dsn         string
		env         string // PGCONNECT_TIMEOUT
		wantConns   int32
		wantTimeout time.Duration
	}{
		{"defaults", "postgres://u@127.0.0.1:5432/db", "", DefaultMaxConns, DefaultConnectTimeout},
		{"DSN's pool and timeout", "postgres://u@127.0.0.1:5432/db?pool_max_conns=7&connect_timeout=3", "", 7, 3 * time.Second},
		{"PGCONNECT_TIMEOUT", "postgres://u@127.0.0.1:5432/db", "4", DefaultMaxConns, 4 * time.Second},
		{"DSN beats PGCONNECT_TIMEOUT", "postgres://u@127.0.0.1:5432/db?connect_timeout=2", "4", DefaultMaxConns, 2 * time.Second},
		{"explicit wait for ever", "postgres://u@127.0.0.1:5432/db?connect_timeout=0", "", DefaultMaxConns, 0},
		{"PGCONNECT_TIMEOUT waits for ever", "postgres://u@127.0.0.1:5432/db", "0", DefaultMaxConns, 0},
		{"key=value DSN", "host=127.0.0.1 user=u dbname=db connect_timeout=5", "", DefaultMaxConns, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PGCONNECT_TIMEOUT", tt.env)
			cfg, err := poolConfig(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MaxConns != tt.wantConns {
				t.Errorf("MaxConns = %d, want %d", cfg.MaxConns, tt.wantConns)
			}
			if got := cfg.ConnConfig.ConnectTimeout; got != tt.wantTimeout {
				t.Errorf("ConnectTimeout = %s, want %s", got, tt.wantTimeout)
			}
		})
	}
}

// TestPoolConfigQueryTimeout: the DSN's spool_query_timeout sets the
// bound on each statement and each wait for a connection (0: none),
// DefaultQueryTimeout when it is absent; it is never sent to the server,
// which refuses a parameter it does not know.
func TestPoolConfigQueryTimeout(t *testing.T) {
	tests := []struct {
		name    string
		dsn     string
		want    time.Duration
		wantErr bool
	}{
		{"default", "postgres://u@127.0.0.1:5432/db", DefaultQueryTimeout, false},
		{"set", "postgres://u@127.0.0.1:5432/db?spool_query_timeout=5s", 5 * time.Second, false},
		{"none", "postgres://u@127.0.0.1:5432/db?spool_query_timeout=0", 0, false},
		{"key=value DSN", "host=127.0.0.1 user=u dbname=db spool_query_timeout=1m", time.Minute, false},
		{"no unit", "postgres://u@127.0.0.1:5432/db?spool_query_timeout=30", 0, true},
		{"negative", "postgres://u@127.0.0.1:5432/db?spool_query_timeout=-1s", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := poolConfig(tt.dsn)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("poolConfig(%q) succeeded; want an error", tt.dsn)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got time.Duration
			if d, ok := cfg.ConnConfig.Tracer.(queryDeadline); ok {
				got = d.timeout
			}
			if got != tt.want {
				t.Errorf("query timeout = %s, want %s", got, tt.want)
			}
			if v, ok := cfg.ConnConfig.RuntimeParams[queryTimeoutParam]; ok {
				t.Errorf("runtime parameter %s=%q would be sent to the server", queryTimeoutParam, v)
			}
		})
	}
}

// TestPoolConfigLockTimeout: with a query timeout the pool's connections
// get a lock_timeout of three quarters of it (unless their session has
// one: TestLockTimeoutStands), capped at PostgreSQL's largest; without
// one, none.
func TestPoolConfigLockTimeout(t *testing.T) {
	for _, tt := range []struct {
		dsn  string
		ours bool
	}{
		{"postgres://u@127.0.0.1:5432/db", true},
		{"postgres://u@127.0.0.1:5432/db?spool_query_timeout=4s", true},
		{"postgres://u@127.0.0.1:5432/db?spool_query_timeout=0", false},
	} {
		cfg, err := poolConfig(tt.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.AfterConnect != nil; got != tt.ours {
			t.Errorf("%s: spool's lock_timeout set: %v, want %v", tt.dsn, got, tt.ours)
		}
	}
	for timeout, want := range map[time.Duration]time.Duration{4 * time.Second: 3 * time.Second, 10000 * time.Hour: maxLockTimeout} {
		if got := lockTimeoutFor(timeout); got != want {
			t.Errorf("lockTimeoutFor(%s) = %s, want %s", timeout, got, want)
		}
	}
}
