package pg

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// poolTx is a transaction of Pool.Begin: its connection goes back to the
// pool on Commit or Rollback, whichever comes first. Everything else is
// pgx's transaction.
type poolTx struct {
	t pgx.Tx
	h *Handle // nil once the connection is back
}

// Commit commits the transaction and gives the connection back.
func (tx *poolTx) Commit(ctx context.Context) error {
	err := tx.t.Commit(ctx)
	tx.end(err)
	return err
}

// Rollback rolls the transaction back and gives the connection back. After
// Commit it returns pgx.ErrTxClosed, as in pgx.
func (tx *poolTx) Rollback(ctx context.Context) error {
	err := tx.t.Rollback(ctx)
	tx.end(err)
	return err
}

// end gives the connection back after Commit or Rollback returned err.
func (tx *poolTx) end(err error) {
	if tx.h == nil {
		return
	}
	h := tx.h
	tx.h = nil
	if errors.Is(err, pgx.ErrTxClosed) {
		err = nil // the transaction had ended; that says nothing of the connection
	}
	Release(h, err)
}

func (tx *poolTx) Begin(ctx context.Context) (pgx.Tx, error) { return tx.t.Begin(ctx) }
func (tx *poolTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return tx.t.CopyFrom(ctx, table, columns, src)
}
func (tx *poolTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return tx.t.SendBatch(ctx, b)
}
func (tx *poolTx) LargeObjects() pgx.LargeObjects { return tx.t.LargeObjects() }
func (tx *poolTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return tx.t.Prepare(ctx, name, sql)
}
func (tx *poolTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return tx.t.Exec(ctx, sql, args...)
}
func (tx *poolTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return tx.t.Query(ctx, sql, args...)
}
func (tx *poolTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return tx.t.QueryRow(ctx, sql, args...)
}
func (tx *poolTx) Conn() *pgx.Conn { return tx.t.Conn() }
