package sim

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/qorbgo/qorb/internal/simhook"
	"github.com/qorbgo/qorb/pool"
)

// A served claim makes one request on its connection, and the request
// feels the backend: its time is the workload's hold times the backend's
// slowness; a backend that lost the connection fails it at once; a hung or
// partitioned backend, or one slower than the claimer's I/O timeout,
// leaves it waiting until that timeout; a backend that serves errors
// answers with one. The backend is looked at when the request starts and
// when it would complete, as for connects and checks.

// Request outcomes, as counted in results.
const (
	reqOK      = iota
	reqReset   // the backend lost the connection: the request fails at once
	reqTimeout // no answer within the workload's I/O timeout
	reqError   // the backend answered with an error
	numReqOutcomes
)

var reqOutcomeNames = [numReqOutcomes]string{"ok", "reset", "timeout", "error"}

var (
	errReqTimeout = errors.New("request timed out: no answer within the claimer's I/O timeout")
	errReqBackend = errors.New("request failed: the backend answered with an error")
)

// A Do claim (Workload.Do) hands its request's outcome to Do's end of
// the claim as the error a client library returns for it, and the
// policy's IsBadConn decides whether the connection goes.
var (
	// errConnReset is a read that met a reset: the backend lost the
	// connection. pool.DefaultIsBadConn blames the connection.
	errConnReset error = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	// errIOTimeout is a read past the claimer's I/O deadline: a net.Error
	// whose Timeout is true, which pool.DefaultIsBadConn blames on the
	// connection (the request may be left half done on it).
	errIOTimeout error = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	// errAnswer is an error answer of the backend (check_fail, errors):
	// the request's failure, not the connection's.
	errAnswer error = &answerError{Code: "XX000", Message: "the backend answered with an error"}
	// errReadOnly is the answer of a demoted primary to a write, on a
	// connection opened before it was demoted (demote).
	errReadOnly error = &answerError{Code: sqlStateReadOnly, Message: "cannot execute a write in a read-only transaction"}
	// errFoundBad is a claimer that finds a good connection bad
	// (Workload.DiscardRate).
	errFoundBad = fmt.Errorf("%w: %w", errUse, pool.ErrBadConn)
)

// sqlStateReadOnly is PostgreSQL's read_only_sql_transaction.
const sqlStateReadOnly = "25006"

// answerError is an error answer of a backend as a database driver
// returns it (pgconn.PgError is the model): a code and a message.
type answerError struct{ Code, Message string }

func (e *answerError) Error() string { return "ERROR: " + e.Message + " (SQLSTATE " + e.Code + ")" }

// err returns the outcome of the claim's request as the error a client
// library returns for it, or nil after a good request.
func (cl *claim) err() error {
	switch cl.outcome {
	case reqReset:
		return errConnReset
	case reqTimeout:
		return errIOTimeout
	case reqError:
		if cl.readOnly {
			return errReadOnly
		}
		return errAnswer
	}
	return nil
}

// isBadConnNames are the names PolicySpec.IsBadConn takes ("": the
// default).
var isBadConnNames = []string{"", "default", "never", "any-error", "read-only"}

// isBadConnNamed returns the pool.Policy.IsBadConn a PolicySpec names
// (nil: the default, pool.DefaultIsBadConn).
func isBadConnNamed(name string) func(error) bool {
	switch name {
	case "never":
		return func(error) bool { return false }
	case "any-error":
		return func(err error) bool { return err != nil }
	case "read-only":
		return isBadConnReadOnly
	}
	return nil
}

// isBadConnReadOnly is pool.DefaultIsBadConn that also blames the
// connection for a read-only answer: after a failover, a connection
// that reaches a demoted primary is of no more use for writes.
func isBadConnReadOnly(err error) bool {
	var ae *answerError
	return pool.DefaultIsBadConn(err) || errors.As(err, &ae) && ae.Code == sqlStateReadOnly
}

// ioTimeout is the client's request I/O timeout.
func (c *client) ioTimeout() int64 {
	if t := c.spec.Workload.IOTimeout.D(); t > 0 {
		return int64(t)
	}
	return int64(defaultIOTimeout)
}

// lost reports whether the backend lost the connection (it went down
// since it was opened).
func (cn *conn) lost() bool {
	return cn.inc != cn.b.inc || !cn.b.up
}

// blocked reports whether a request on the connection gets no answer:
// the backend hangs, or the network between it and the client is cut.
func (cn *conn) blocked() bool {
	b := cn.b
	return b.hang > 0 || b.partition > 0 || cn.inst.c.cutFrom(b)
}

// startRequest starts the request of a claim just served: it draws the
// request's time and schedules its completion (the claim's run).
func (s *Sim) startRequest(cl *claim) {
	c, cn := cl.c, cl.cn
	hold := int64(c.spec.Workload.Hold.Draw(c.rng))
	cl.reqStart, cl.outcome, cl.final, cl.keepConn, cl.readOnly = s.now, reqOK, false, false, false
	tmo := c.ioTimeout()
	switch {
	case cn.lost():
		cl.outcome, cl.final = reqReset, true
		s.q.push(s.now, cl)
		return
	case cn.blocked() || cn.b.chance(cn.b.pHang):
		cl.outcome, cl.final = reqTimeout, true
		s.q.push(s.now+tmo, cl)
		return
	}
	d := cn.b.scale(hold)
	if d > tmo {
		cl.outcome, cl.final = reqTimeout, true
		d = tmo
	}
	s.q.push(s.now+d, cl)
}

// scale multiplies a request's time by the backend's slowness.
func (b *simBackend) scale(d int64) int64 {
	if b.slow != 1 {
		return int64(float64(d) * b.slow)
	}
	return d
}

// finishRequest decides, when the request would complete, how it ends,
// from the backend as it is now. It reports false when the request now
// waits for the I/O timeout (it was rescheduled).
func (s *Sim) finishRequest(cl *claim) bool {
	if cl.final {
		return true
	}
	cl.final = true
	cn := cl.cn
	switch {
	case cn.lost():
		cl.outcome = reqReset
	case cn.blocked():
		cl.outcome = reqTimeout
		if at := cl.reqStart + cl.c.ioTimeout(); at > s.now {
			s.q.push(at, cl)
			return false
		}
	case cn.b.checkFail > 0 || cn.b.chance(cn.b.pCheckFail):
		cl.outcome = reqError
	case cn.b.errors > 0 || cn.b.chance(cn.b.pErrors) || (cn.b.demoted != 0 && cn.opened < cn.b.demoted):
		// An error answer on a healthy connection: the claimer reports
		// it and gives the connection back.
		cl.outcome, cl.keepConn = reqError, true
		cl.readOnly = cn.b.demoted != 0 && cn.opened < cn.b.demoted
	}
	return true
}

// endRequest reports the request to the pool and gives the connection
// back: released after a good request or an error answer of an errors
// fault, discarded after another failed one (or by the workload's discard
// rate). A Do claim ends as Do does instead (endDo). It runs without the
// loop held.
func (s *Sim) endRequest(cl *claim) {
	c, cn := cl.c, cl.cn
	lat := time.Duration(s.now - cl.reqStart)
	c.res.requests[cl.outcome]++
	cn.b.requests[cl.outcome]++
	if cl.outcome != reqOK {
		s.tr.record(s.now, "request", cl.inst.name, "", "failed", reqOutcomeNames[cl.outcome]+" "+cn.b.name, false)
	} else {
		c.res.reqTimes.add(int64(lat))
	}
	if c.spec.Workload.Do {
		s.endDo(cl, lat)
		return
	}
	s.report(cl, lat)
	dr := c.spec.Workload.DiscardRate
	if (cl.outcome != reqOK && !cl.keepConn) || (dr > 0 && c.rng.Float64() < dr) {
		c.res.discards++
		cl.h.Discard(errUse)
	} else {
		cl.h.Release()
	}
}

// report tells the claim's pool how its request went (Handle.Report),
// unless a forced Close took the connection from it.
func (s *Sim) report(cl *claim, lat time.Duration) {
	if cl.forced {
		return
	}
	switch cl.outcome {
	case reqOK:
		cl.h.Report(lat, nil)
	case reqTimeout:
		cl.h.Report(lat, errReqTimeout)
	case reqError:
		cl.h.Report(lat, errReqBackend)
	}
}

// endDo ends a Do claim as pool.DoHandle ends its own: its function, the
// request already made, reports how it went and returns the request's
// error (or errFoundBad at the workload's discard rate after a good
// one), and DoHandle's end of the claim (internal/simhook.Do) releases
// the connection or discards it, as the policy's IsBadConn says. It runs
// without the loop held.
func (s *Sim) endDo(cl *claim, lat time.Duration) {
	c := cl.c
	err := cl.err()
	if dr := c.spec.Workload.DiscardRate; err == nil && dr > 0 && c.rng.Float64() < dr {
		err = errFoundBad
	}
	if discarded, _ := simhook.Do(cl.h, func() error { s.report(cl, lat); return err }); discarded {
		c.res.discards++
	}
}
