package pg_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
)

// load is a bounded workload of many goroutines on a pool: inserts,
// queries, transactions and batches on one table that exists on every
// server, until a number of operations is reached or its context ends.
type load struct {
	ok          atomic.Int64 // operations that succeeded
	claimFailed atomic.Int64 // operations whose claim failed
	stmtFailed  atomic.Int64 // operations whose statement failed
	inserted    atomic.Int64 // rows whose insert was acknowledged
	maybe       atomic.Int64 // rows of failed operations that may have been committed

	mu      sync.Mutex
	errs    []error // the first few errors
	stopped atomic.Bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startLoad starts workers goroutines running operations on p against
// table until maxOps operations are done, d passes, or stop is called.
func startLoad(p *pg.Pool, table string, workers int, maxOps int64, d time.Duration) *load {
	l := &load{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	l.cancel = cancel
	var issued atomic.Int64
	for w := range workers {
		l.wg.Go(func() {
			for i := w; !l.stopped.Load() && ctx.Err() == nil && issued.Add(1) <= maxOps; i++ {
				l.one(ctx, p, table, w, i)
			}
		})
	}
	return l
}

// stop ends the workload: each goroutine finishes its operation, so no
// claim is cancelled.
func (l *load) stop() {
	l.stopped.Store(true)
	l.wg.Wait()
	l.cancel()
}

// wait waits for the workload to end by itself.
func (l *load) wait() {
	l.wg.Wait()
	l.cancel()
}

func (l *load) total() int64 { return l.ok.Load() + l.claimFailed.Load() + l.stmtFailed.Load() }

func (l *load) String() string {
	return fmt.Sprintf("%d operations: %d ok, %d failed claims, %d failed statements",
		l.total(), l.ok.Load(), l.claimFailed.Load(), l.stmtFailed.Load())
}

// firstErrors returns the first errors the workload saw.
func (l *load) firstErrors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

var errClaimedInTx = errors.New("claimed a connection inside a transaction")

// claimError reports whether err is a failed claim: one of the pool's
// errors. (Each operation has a context far longer than the policy's
// claim timeout, so a claim that waits too long fails with a pool error,
// not the context's.)
func claimError(err error) bool {
	return errors.Is(err, pool.ErrNoBackends) || errors.Is(err, pool.ErrNoBackendsOnline) ||
		errors.Is(err, pool.ErrAllClaimsUsed) || errors.Is(err, pool.ErrClosed)
}

// one runs operation i of worker w.
func (l *load) one(ctx context.Context, p *pg.Pool, table string, w, i int) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rows := int64(0) // rows the operation inserts
	var err error
	switch i % 6 {
	case 0:
		rows = 1
		_, err = p.Exec(ctx, "insert into "+table+" (worker) values ($1)", w)
	case 1:
		var n int64
		err = p.QueryRow(ctx, "select count(*) from "+table+" where worker = $1", w).Scan(&n)
	case 2:
		rows = 2
		err = l.transfer(ctx, p, table, w)
	case 3:
		err = l.series(ctx, p)
	case 4:
		rows = 1
		b := &pgx.Batch{}
		b.Queue("insert into "+table+" (worker) values ($1)", w)
		b.Queue("select 1")
		err = p.SendBatch(ctx, b).Close()
	case 5:
		// A claimer that leaves its transaction open: the pool must roll
		// it back (the row never appears) before anyone else claims the
		// connection, and no claimer may find one in a transaction.
		err = p.ClaimFunc(ctx, func(c *pgx.Conn) error {
			if s := c.PgConn().TxStatus(); s != 'I' {
				return fmt.Errorf("%w: status %q", errClaimedInTx, s)
			}
			if _, err := c.Exec(ctx, "begin"); err != nil {
				return err
			}
			_, err := c.Exec(ctx, "insert into "+table+" (worker) values ($1)", -(w + 1))
			return err
		})
	}
	switch {
	case err == nil:
		l.ok.Add(1)
		l.inserted.Add(rows)
		return
	case ctx.Err() != nil && !claimError(err):
		// The workload was stopped mid-operation: neither outcome counts.
		l.maybe.Add(rows)
		return
	case claimError(err):
		l.claimFailed.Add(1)
	default:
		l.stmtFailed.Add(1)
		l.maybe.Add(rows)
	}
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err)
	}
	l.mu.Unlock()
}

// transfer inserts two rows in one transaction.
func (l *load) transfer(ctx context.Context, p *pg.Pool, table string, w int) error {
	tx, err := p.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it only gives ErrTxClosed
	for range 2 {
		if _, err := tx.Exec(ctx, "insert into "+table+" (worker) values ($1)", w); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// series reads ten rows and checks their sum.
func (l *load) series(ctx context.Context, p *pg.Pool) error {
	rows, err := p.Query(ctx, "select g from generate_series(1, 10) g")
	if err != nil {
		return err
	}
	defer rows.Close()
	sum := 0
	for rows.Next() {
		var g int
		if err := rows.Scan(&g); err != nil {
			return err
		}
		sum += g
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if sum != 55 {
		return fmt.Errorf("sum of 1..10 is %d", sum)
	}
	return nil
}

// errorTracer counts, per server port, the statements that failed, as pgx
// reports them to its query tracer.
type errorTracer struct {
	mu     sync.Mutex
	byPort map[uint16]int
}

func (e *errorTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (e *errorTracer) TraceQueryEnd(_ context.Context, c *pgx.Conn, data pgx.TraceQueryEndData) {
	if data.Err == nil {
		return
	}
	var port uint16
	if a, ok := c.PgConn().Conn().RemoteAddr().(*net.TCPAddr); ok {
		port = uint16(a.Port)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byPort == nil {
		e.byPort = map[uint16]int{}
	}
	e.byPort[port]++
}

// counts returns the failed statements by port.
func (e *errorTracer) counts() map[uint16]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[uint16]int{}
	for k, v := range e.byPort {
		out[k] = v
	}
	return out
}
