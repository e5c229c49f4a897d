package store

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
	"testing"

	"github.com/jmoiron/sqlx"
)

// TestCanceledWriteReportsTheCancel: a write whose context ends (Ctrl-C in
// reindex) fails with the context's error alone, whether its statements
// saw the cancel or it ended before its commit. database/sql rolls the
// transaction back itself when its context ends, so inTx's own rollback,
// or its commit, finds it done; reindex used to print that as a second
// error, "rollback: sql: transaction has already been committed or rolled
// back" (or "commit: ..."), as if the index were left half written.
func TestCanceledWriteReportsTheCancel(t *testing.T) {
	tests := []struct {
		name   string
		result func(ctx context.Context) error // what fn returns once rolled back
	}{
		{"statement saw the cancel", func(ctx context.Context) error { return ctx.Err() }},
		{"canceled before the commit", func(context.Context) error { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			ctx, cancel := context.WithCancel(t.Context())
			err := s.inTx(ctx, func(tx *sqlx.Tx) error {
				cancel()
				waitRolledBack(t, tx)
				return tt.result(ctx)
			})
			if !errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrTxDone) {
				t.Fatalf("inTx = %v, want context.Canceled alone", err)
			}
		})
	}
}

// waitRolledBack waits until database/sql has rolled tx back after its
// context ended, as it has by the time a long write notices the cancel.
func waitRolledBack(t *testing.T, tx *sqlx.Tx) {
	t.Helper()
	for {
		_, err := tx.ExecContext(context.Background(), `SELECT 1`)
		if errors.Is(err, sql.ErrTxDone) {
			return
		}
		if err != nil {
			t.Fatalf("exec in a transaction being rolled back: %v", err)
		}
		runtime.Gosched()
	}
}
