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
// reindex) fails with the context's error alone. database/sql rolls the
// transaction back itself when its context ends, so inTx's own rollback
// finds it done; reindex used to print that as a second error,
// "rollback: sql: transaction has already been committed or rolled back",
// as if the index were left half written.
func TestCanceledWriteReportsTheCancel(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		cancel()
		// Wait until database/sql has rolled the transaction back, as it
		// has by the time a long write notices the cancel.
		for {
			_, err := tx.ExecContext(context.Background(), `SELECT 1`)
			if errors.Is(err, sql.ErrTxDone) {
				break
			}
			if err != nil {
				t.Fatalf("exec in a transaction being rolled back: %v", err)
			}
			runtime.Gosched()
		}
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("inTx = %v, want context.Canceled", err)
	}
	if errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("inTx = %q, reports the rollback database/sql already did as a failure", err)
	}
}

// TestCanceledBeforeCommitReportsTheCancel: a write whose context ends
// after its statements, before its commit, fails with the context's error,
// not with "commit: transaction has already been committed or rolled back".
func TestCanceledBeforeCommitReportsTheCancel(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		cancel()
		for {
			_, err := tx.ExecContext(context.Background(), `SELECT 1`)
			if errors.Is(err, sql.ErrTxDone) {
				return nil // rolled back by database/sql; fn itself succeeded
			}
			if err != nil {
				return err
			}
			runtime.Gosched()
		}
	})
	if !errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("inTx = %v, want context.Canceled alone", err)
	}
}
