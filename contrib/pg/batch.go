package pg

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// poolBatchResults are the results of Pool.SendBatch: their connection goes
// back to the pool on Close, or, when the batch began a transaction, when
// that transaction ends.
type poolBatchResults struct {
	br pgx.BatchResults
	h  *Handle // nil once the connection is back, or when tx holds it
	tx *poolTx // the batch's transaction, which holds the connection
}

func (b *poolBatchResults) Exec() (pgconn.CommandTag, error) { return b.br.Exec() }
func (b *poolBatchResults) Query() (pgx.Rows, error)         { return b.br.Query() }
func (b *poolBatchResults) QueryRow() pgx.Row                { return b.br.QueryRow() }

// Close reads what is left of the results and gives the connection back
// (unless the batch's transaction holds it). When the batch failed before
// its transaction began, the connection goes back too.
func (b *poolBatchResults) Close() error {
	err := b.br.Close()
	if b.h != nil {
		h := b.h
		b.h = nil
		Release(h, err)
	}
	if b.tx != nil && b.tx.h != nil && err != nil {
		if c := b.tx.h.Conn(); c.IsClosed() || c.PgConn().TxStatus() == 'I' {
			// The transaction never began (pgx has closed it) or the
			// connection is gone: give the connection back now, in case
			// no Rollback follows.
			b.tx.end(err)
		}
	}
	return err
}

// Tx returns the transaction the batch began, or nil.
func (b *poolBatchResults) Tx() pgx.Tx {
	if b.tx == nil {
		return nil
	}
	return b.tx
}
