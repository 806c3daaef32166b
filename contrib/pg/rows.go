package pg

import (
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// poolRows are the rows of Pool.Query: their connection goes back to the
// pool when they are closed, read to the end, or fail a Scan or Values.
type poolRows struct {
	r pgx.Rows
	h *Handle // nil once the connection is back
}

// Close closes the rows and gives the connection back.
func (r *poolRows) Close() {
	r.r.Close()
	if r.h != nil {
		h := r.h
		r.h = nil
		Release(h, r.r.Err())
	}
}

func (r *poolRows) Err() error                                   { return r.r.Err() }
func (r *poolRows) CommandTag() pgconn.CommandTag                { return r.r.CommandTag() }
func (r *poolRows) FieldDescriptions() []pgconn.FieldDescription { return r.r.FieldDescriptions() }
func (r *poolRows) RawValues() [][]byte                          { return r.r.RawValues() }
func (r *poolRows) TypeMap() *pgtype.Map                         { return r.r.TypeMap() }

// Conn returns nil once the connection is back in the pool.
func (r *poolRows) Conn() *pgx.Conn {
	if r.h == nil {
		return nil
	}
	return r.r.Conn()
}

// Next advances to the next row; after the last one it closes the rows.
func (r *poolRows) Next() bool {
	if r.h == nil {
		return false
	}
	if !r.r.Next() {
		r.Close()
		return false
	}
	return true
}

// Scan scans the current row; on error it closes the rows (pgx does too).
func (r *poolRows) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if err != nil {
		r.Close()
	}
	return err
}

// Values returns the current row's values; on error it closes the rows.
func (r *poolRows) Values() ([]any, error) {
	v, err := r.r.Values()
	if err != nil {
		r.Close()
	}
	return v, err
}

// errRowScanned is returned by a second Scan of Pool.QueryRow's row.
var errRowScanned = errors.New("pg: row already scanned")

// poolRow is the row of Pool.QueryRow: its connection goes back to the
// pool when it is scanned.
type poolRow struct {
	r pgx.Row
	h *Handle // nil once the connection is back
}

// Scan scans the row and gives the connection back, also when Scan
// panics (a bad destination).
func (r *poolRow) Scan(dest ...any) (err error) {
	if r.h == nil {
		return errRowScanned
	}
	h := r.h
	r.h = nil
	done := false
	defer func() {
		if !done {
			h.Discard(errPanicked)
		}
	}()
	err = r.r.Scan(dest...)
	done = true
	Release(h, err)
	return err
}

// errRows are the rows of a Query that failed: closed, with the error.
type errRows struct{ err error }

func (errRows) Close()                                       {}
func (e errRows) Err() error                                 { return e.err }
func (errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (errRows) Next() bool                                   { return false }
func (e errRows) Scan(...any) error                          { return e.err }
func (e errRows) Values() ([]any, error)                     { return nil, e.err }
func (errRows) RawValues() [][]byte                          { return nil }
func (errRows) Conn() *pgx.Conn                              { return nil }
func (errRows) TypeMap() *pgtype.Map                         { return nil }

// errRow is the row of a QueryRow whose claim failed.
type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }
