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
