package pool

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/cockroachdb/datadriven"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool/machine"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/slot"
)

// TestDataDriven runs the scripts under testdata/: each drives one pool with
// text commands and pins, below ----, the transitions the pool's machines
// go through and the actions the core asks for. Regenerate with
//
//	go test ./pool -run TestDataDriven -rewrite
//
// and review the diff. The command language is described at
// [ddHarness.run].
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &ddHarness{t: t}
		defer func() {
			h.t = t
			h.finish()
		}()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			h.t = t
			return h.run(d)
		})
	})
}

// ddHarness drives one pool from a script. The pool runs on a clock.Mock on
// a halted loop: no timer fires on its own, the harness fires due timers
// itself, in the loop's order, when a command moves the clock. The loop's
// spawner holds every action; a held action runs, and completes, only when
// a command says so, with the outcome the command gives. Claims and Close
// run on goroutines of their own (they block); after every command the
// harness waits, without sleeping, until each of them is blocked where only
// a later command can move it (queued, in the acquire hook, waiting for
// Close) or has returned. So one script always prints the same text.
type ddHarness struct {
	t     *testing.T
	clk   *clock.Mock
	start time.Time
	res   *resolver.Fixed
	p     *Pool[*ddConn]
	addrs map[backend.Name]netip.AddrPort

	mu       sync.Mutex // guards what the loop's callbacks and goroutines write below
	lines    []ddLine   // output of the current command, not yet flushed
	held     []*ddJob   // actions spawned and not yet run, in spawn order
	claimers []*ddClaimer
	closers  []*ddCloser
	open     map[*ddConn]bool // connections opened and not yet closed
	nconns   int
	doubles  int // connections closed twice
	// closeReturned is set once a Close returned; late lists the connector
	// calls (but Close) made after that.
	closeReturned bool
	late          []string
	outcome       struct { // what the I/O of the job being run returns
		connErr, checkErr error
		slot              string
	}
	printedAt time.Time // virtual time of the last line printed
	wg        sync.WaitGroup
}

// ddLine is one line of output. A slot's transition into failed keeps the
// record, so that the backoff the slot then waits can be printed with it.
type ddLine struct {
	at    time.Time
	text  string
	fails string // the slot id, for a transition into failed
}

// ddJob is an action the core asked for, held until a command runs it.
type ddJob struct {
	a   fsm.Action
	job func() func()
}

// ddClaimer is one Claim running on its own goroutine.
type ddClaimer struct {
	name     string
	ctx      context.Context
	cancel   context.CancelFunc
	done     bool
	h        *Handle[*ddConn]
	err      error
	hook     chan error // non-nil while the claimer waits in its acquire hook
	hookOn   string     // the slot whose connection the hook was given
	hookWhat string     // "acquire hook" or "check on claim"
	printed  string     // the status last printed
}

// ddCloser is one Close running on its own goroutine.
type ddCloser struct {
	name    string
	ctx     context.Context
	cancel  context.CancelFunc
	first   bool // the Close that began closing the pool
	done    bool
	err     error
	printed bool
}

type ddClaimerKey struct{}

// ddResolver is a Fixed resolver that, when the pool starts it (with the
// loop held, before any action is spawned), installs the harness on the
// loop: the spawner that holds actions, and a halted real timer.
type ddResolver struct {
	*resolver.Fixed
	h *ddHarness
}

func (r ddResolver) Start(rh resolver.Host) {
	l := rh.(*host[*ddConn]).p.loop
	l.SetSpawner(r.h.spawn)
	l.Halt()
	r.Fixed.Start(rh)
}

// spawn holds an action. It runs with the loop held.
func (h *ddHarness) spawn(a fsm.Action, job func() func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = append(h.held, &ddJob{a: a, job: job})
	h.lines = append(h.lines, ddLine{at: h.clk.Now(), text: "action: " + a.String()})
}

// observe prints a transition. It runs with the loop held.
func (h *ddHarness) observe(tr fsm.Transition) {
	var b strings.Builder
	b.WriteString(tr.Kind())
	if tr.Kind() != "pool" {
		b.WriteString(" " + tr.ID)
	}
	b.WriteString(": ")
	if !tr.Created {
		b.WriteString(tr.FromName() + " ")
	}
	fmt.Fprintf(&b, "--%s--> %s", tr.EventName(), tr.ToName())
	if tr.Impossible {
		b.WriteString(" (impossible)")
		h.t.Errorf("impossible transition: %v", tr)
	}
	l := ddLine{at: tr.At, text: b.String()}
	if st, ok := slot.Kind.Step(tr); ok && st.To == slot.Failed && !tr.Impossible {
		l.fails = tr.ID
	}
	h.mu.Lock()
	h.lines = append(h.lines, l)
	h.mu.Unlock()
}

// claimer returns the claimer called name, or nil. h.mu must be held.
func (h *ddHarness) claimer(name string) *ddClaimer {
	for _, c := range h.claimers {
		if c.name == name {
			return c
		}
	}
	return nil
}

// inClaimerHook ends the hook (what) that the claimer named by d's
// argument is blocked in, as d says (its command ends in -ok or -err). It
// reports false when d names no claimer blocked in that hook.
func (h *ddHarness) inClaimerHook(d *datadriven.TestData, what string) bool {
	if len(d.CmdArgs) == 0 {
		return false
	}
	h.mu.Lock()
	c := h.claimer(d.CmdArgs[0].Key)
	if c == nil || c.hook == nil || c.hookWhat != what {
		h.mu.Unlock()
		return false
	}
	ch := c.hook
	c.hook = nil
	h.mu.Unlock()
	var err error
	if strings.HasSuffix(d.Cmd, "-err") {
		err = h.errArg(d, "refused")
	}
	ch <- err
	return true
}

// run executes one command and returns its output.
//
// Commands (D is a duration such as 30s or 20ms; a slot is named
// backend/index, such as a/0):
//
//	new backends=a,b [max-slots=N] [spares=N] [per-backend=N] [dead-after=N]
//	    [claim-timeout=D] [connect-timeout=D] [health=D] [health-timeout=D]
//	    [rebalance=D] [decoherence=D] [backoff-min=D] [backoff-max=D]
//	    [jitter=D] [lifetime=D] [lifetime-jitter=D] [idle-time=D] [min-slots=N]
//	    [target-delay=D] [delay-interval=D] [max-connecting=N] [connect-rate=F]
//	    [shrink-half-life=D] [picker=least-latency] [eject=N] [eject-base=D]
//	    [eject-percent=N] [conn-hooks]
//	    [validate] [check-idle=D]
//	    [check-on-release] [hooks=acquire,recycle]
//	    [seed=N]
//	                          create the pool (a Fixed resolver of the named
//	                          backends, strict, on a mock clock)
//	connect-ok S...           run the held connect of each slot: it succeeds
//	connect-err S... [err=E] [first-check]
//	                          ... it fails (or, with first-check, the connect
//	                          succeeds and the Validator's first check fails)
//	check-ok S..., check-err S... [err=E]
//	                          (S may also be a claim blocked in its check on
//	                          claim: the check ends so)
//	recycle-ok S..., recycle-err S... [err=E]
//	close-done S...           run the held check, recycle or close
//	    (S may be "all": every job of that kind held when the command
//	    starts, in spawn order)
//	actions                   list the held actions
//	claim C [ctx=cancelled] [try]
//	                          start a claim named C (with try, TryClaim)
//	acquire-ok C, acquire-err C [err=E]
//	                          end C's acquire hook
//	release C, discard C [err=E]
//	do C [err=E [bad]] [panic]
//	                          end C's claim as Do ends its own after its
//	                          function: the function returns nil, the
//	                          error E (wrapping ErrBadConn with bad), or
//	                          panics
//	report C latency=D [err=E] C reports how its backend did (Handle.Report)
//	cancel C                  end the context of claim (or close) C
//	tick D                    advance the clock by D, firing timers at their
//	                          deadlines in the loop's order
//	resolver-update B...      the resolver now lists backends B...
//	close [K] [ctx=cancelled] start Close, named K (default "close")
//	reset                     call Reset
//	stats                     a summary of Stats
//	timers                    the pending deadlines of the pool's timers
//
// Output: each transition ("slot a/0: connecting --connect_ok--> connected";
// a slot entering failed shows the backoff it then waits), each action
// ("action: connect a/0"), in the order they happen; then what claims and
// closes did, in the order they were started ("c1: queued", "c1: acquire
// hook on a/0", "c1: claimed a/0", "c1: error: ...", "k: closed"). A line
// "+D" gives the virtual time, from the start of the script, whenever it
// moved since the last line printed.
func (h *ddHarness) run(d *datadriven.TestData) (output string) {
	var out strings.Builder
	defer func() {
		switch e := recover().(type) {
		case nil:
		case ddScriptError:
			h.t.Errorf("%s: %s", d.Pos, string(e))
			output = out.String() + "script error: " + string(e) + "\n"
		default:
			panic(e)
		}
	}()
	if d.Cmd != "new" && h.p == nil {
		h.scriptError("no pool yet: start with new")
	}
	switch d.Cmd {
	case "new":
		h.newPool(d)
	case "check-ok", "check-err":
		if h.inClaimerHook(d, "check on claim") {
			break
		}
		h.complete(d)
	case "connect-ok", "connect-err", "recycle-ok", "recycle-err", "close-done":
		h.complete(d)
	case "actions":
		h.mu.Lock()
		for _, j := range h.held {
			fmt.Fprintf(&out, "%s\n", j.a)
		}
		if len(h.held) == 0 {
			out.WriteString("none\n")
		}
		h.mu.Unlock()
		return out.String()
	case "claim":
		h.claim(d)
	case "acquire-ok", "acquire-err":
		if !h.inClaimerHook(d, "acquire hook") {
			h.scriptError("%s is not in its acquire hook", h.oneName(d))
		}
	case "release", "discard":
		name := h.oneName(d)
		h.mu.Lock()
		c := h.claimer(name)
		h.mu.Unlock()
		if c == nil || c.h == nil {
			h.scriptError("%s holds no handle", name)
		}
		if d.Cmd == "release" {
			c.h.Release()
		} else {
			c.h.Discard(h.errArg(d, "broken"))
		}
	case "do":
		h.do(d)
	case "report":
		name := h.oneName(d)
		h.mu.Lock()
		c := h.claimer(name)
		h.mu.Unlock()
		if c == nil || c.h == nil {
			h.scriptError("%s holds no handle", name)
		}
		var lat string
		d.ScanArgs(h.t, "latency", &lat)
		l, err := time.ParseDuration(lat)
		if err != nil {
			h.scriptError("latency: %v", err)
		}
		var berr error
		if d.HasArg("err") {
			berr = h.errArg(d, "")
		}
		c.h.Report(l, berr)
	case "cancel":
		name := h.oneName(d)
		h.mu.Lock()
		var cancel context.CancelFunc
		if c := h.claimer(name); c != nil {
			cancel = c.cancel
		}
		for _, k := range h.closers {
			if k.name == name {
				cancel = k.cancel
			}
		}
		h.mu.Unlock()
		if cancel == nil {
			h.scriptError("no claim or close named %s", name)
		}
		cancel()
	case "tick":
		if len(d.CmdArgs) != 1 {
			h.scriptError("tick D")
		}
		dur, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			h.scriptError("tick: %v", err)
		}
		h.tick(dur, &out)
	case "resolver-update":
		var bs []backend.Backend
		for _, a := range d.CmdArgs {
			bs = append(bs, h.backend(a.Key))
		}
		h.res.ReplaceBackends(bs...)
	case "close":
		h.close(d)
	case "reset":
		h.p.Reset()
	case "stats":
		h.settle()
		h.flush(&out)
		h.stats(&out)
		return out.String()
	case "timers":
		h.settle()
		h.flush(&out)
		h.timers(&out)
		return out.String()
	default:
		h.scriptError("unknown command %s", d.Cmd)
	}
	h.settle()
	h.flush(&out)
	return out.String()
}

// ddScriptError is a mistake in a script: the command stops, the test
// fails, and the output (written by -rewrite) says what was wrong.
type ddScriptError string

func (h *ddHarness) scriptError(format string, args ...any) {
	panic(ddScriptError(fmt.Sprintf(format, args...)))
}

func (h *ddHarness) oneName(d *datadriven.TestData) string {
	if len(d.CmdArgs) == 0 || len(d.CmdArgs[0].Vals) != 0 {
		h.scriptError("%s: which one?", d.Cmd)
	}
	return d.CmdArgs[0].Key
}

// errArg returns the error named by err=E, or one named def.
func (h *ddHarness) errArg(d *datadriven.TestData, def string) error {
	s := def
	d.MaybeScanArgs(h.t, "err", &s)
	return errors.New(s)
}

// do ends a claim through Do's end (Handle.do), with a function that
// returns what d says, and prints what Do returned or panicked with.
func (h *ddHarness) do(d *datadriven.TestData) {
	name := h.oneName(d)
	h.mu.Lock()
	c := h.claimer(name)
	h.mu.Unlock()
	if c == nil || c.h == nil {
		h.scriptError("%s holds no handle", name)
	}
	var ferr error
	if d.HasArg("err") {
		ferr = h.errArg(d, "")
		if d.HasArg("bad") {
			ferr = fmt.Errorf("%w: %w", ferr, ErrBadConn)
		}
	}
	var text string
	func() {
		defer func() {
			if v := recover(); v != nil {
				text = fmt.Sprintf("%s: Do panicked again: %v", name, v)
			}
		}()
		discarded, err := c.h.do(func(*ddConn) error {
			if d.HasArg("panic") {
				panic("the function panicked")
			}
			return ferr
		}, nil)
		text = fmt.Sprintf("%s: Do returned %v", name, err)
		if discarded {
			text += ", discarded"
		}
	}()
	h.mu.Lock()
	h.lines = append(h.lines, ddLine{at: h.clk.Now(), text: text})
	h.mu.Unlock()
}

// backend returns the backend called name; each name gets its own address.
func (h *ddHarness) backend(name string) backend.Backend {
	n := backend.Name(name)
	a, ok := h.addrs[n]
	if !ok {
		a = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(len(h.addrs) + 1)}), 5432)
		h.addrs[n] = a
	}
	return backend.Backend{Name: n, Addr: a}
}

func (h *ddHarness) newPool(d *datadriven.TestData) {
	if h.p != nil {
		h.scriptError("one pool per script")
	}
	var pol Policy
	var validate, recycle, acquire, hooks bool
	seed := uint64(1)
	var bs []backend.Backend
	h.addrs = map[backend.Name]netip.AddrPort{}
	h.open = map[*ddConn]bool{}
	dur := func(a datadriven.CmdArg) time.Duration {
		v, err := time.ParseDuration(a.SingleVal(h.t))
		if err != nil {
			h.scriptError("%s: %v", a.Key, err)
		}
		return v
	}
	num := func(a datadriven.CmdArg) int {
		var v int
		a.Scan(h.t, 0, &v)
		return v
	}
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "backends":
			for _, v := range a.Vals {
				for n := range strings.SplitSeq(v, ",") {
					bs = append(bs, h.backend(n))
				}
			}
		case "max-slots":
			pol.MaxSlots = num(a)
		case "spares":
			pol.SparesWanted = num(a)
		case "per-backend":
			pol.MaxSlotsPerBackend = num(a)
		case "dead-after":
			pol.DeadAfter = num(a)
		case "claim-timeout":
			pol.ClaimTimeout = dur(a)
		case "connect-timeout":
			pol.ConnectTimeout = dur(a)
		case "health":
			pol.HealthInterval = dur(a)
		case "health-timeout":
			pol.HealthTimeout = dur(a)
		case "rebalance":
			pol.RebalanceInterval = dur(a)
		case "decoherence":
			pol.DecoherenceInterval = dur(a)
		case "backoff-min":
			pol.BackoffMin = dur(a)
		case "backoff-max":
			pol.BackoffMax = dur(a)
		case "jitter":
			pol.BackoffJitter = dur(a)
		case "lifetime":
			pol.MaxConnLifetime = dur(a)
		case "lifetime-jitter":
			pol.MaxConnLifetimeJitter = dur(a)
		case "min-slots":
			pol.MinSlots = num(a)
		case "shrink-half-life":
			pol.ShrinkHalfLife = dur(a)
		case "max-connecting":
			pol.MaxConnectingPerBackend = num(a)
		case "connect-rate":
			f, err := strconv.ParseFloat(a.Vals[0], 64)
			if err != nil {
				h.scriptError("connect-rate: %v", err)
			}
			pol.ConnectRatePerBackend = f
		case "target-delay":
			pol.TargetClaimDelay = dur(a)
		case "delay-interval":
			pol.ClaimDelayInterval = dur(a)
		case "idle-time":
			pol.MaxConnIdleTime = dur(a)
		case "fixed-want":
			pol.Rebalancer = fixedWant(num(a))
		case "slow-start":
			pol.SlowStartWindow = dur(a)
		case "max-waiters":
			pol.MaxWaiters = num(a)
		case "validate":
			validate = true
		case "check-idle":
			pol.CheckIdleAfter = dur(a)
		case "check-on-release":
			pol.CheckOnRelease = true
		case "hooks":
			for _, v := range a.Vals {
				for hook := range strings.SplitSeq(v, ",") {
					switch hook {
					case "acquire":
						acquire = true
					case "recycle":
						recycle = true
					default:
						h.scriptError("unknown hook %s", hook)
					}
				}
			}
		case "picker":
			switch a.Vals[0] {
			case "least-latency":
				pol.Picker = LeastLatency{}
			case "least-claimed":
			default:
				h.scriptError("unknown picker %s", a.Vals[0])
			}
		case "eject":
			pol.Ejection.ConsecutiveErrors = num(a)
		case "eject-base":
			pol.Ejection.BaseTime = dur(a)
		case "eject-percent":
			pol.Ejection.MaxEjectedPercent = num(a)
		case "seed":
			seed = uint64(num(a))
		case "conn-hooks":
			hooks = true
		default:
			h.scriptError("new: unknown argument %s", a.Key)
		}
	}
	h.clk = clock.NewMock()
	h.start = h.clk.Now()
	h.printedAt = h.start
	h.res = resolver.NewFixedBackends(bs...)
	opts := []Option{WithClock(h.clk), WithSeed(seed), WithStrict(true), WithObserver(fsm.ObserverFunc(h.observe))}
	if hooks {
		hook := func(what string) func(backend.Backend, *ddConn) {
			return func(b backend.Backend, c *ddConn) {
				h.mu.Lock()
				h.lines = append(h.lines, ddLine{at: h.clk.Now(), text: fmt.Sprintf("conn %s: connection %d of %s", what, c.id, c.slot)})
				h.mu.Unlock()
			}
		}
		opts = append(opts, WithConnHooks(hook("added"), hook("removed")))
	}
	p, err := New(ddResolver{h.res, h}, h.connector(validate, recycle, acquire), pol, opts...)
	if err != nil {
		h.scriptError("new: %v", err)
	}
	h.p = p
	p.loop.Enter()
	p.loop.OnEventEnd(func() {
		if err := p.checkInvariants(); err != nil {
			h.t.Errorf("invariant: %v", err)
		}
	})
	p.loop.Leave()
}

// complete runs held jobs: their I/O off the loop with the outcome the
// command gives, then their completion with the loop held.
func (h *ddHarness) complete(d *datadriven.TestData) {
	verb, result, _ := strings.Cut(d.Cmd, "-")
	kind := map[string]fsm.ActionKind{"connect": fsm.Connect, "check": fsm.Check, "recycle": fsm.Recycle, "close": fsm.CloseConn}[verb]
	var fail error
	if result == "err" {
		fail = h.errArg(d, map[string]string{"connect": "refused", "check": "unhealthy", "recycle": "dirty"}[verb])
		if d.HasArg("overloaded") {
			// The server refused under load, asking to be left alone
			// this long (0: it said nothing).
			var after string
			d.ScanArgs(h.t, "overloaded", &after)
			ra, err := time.ParseDuration(after)
			if err != nil {
				h.scriptError("overloaded=%s: %v", after, err)
			}
			fail = backend.Overloaded(fail, ra)
		}
	}
	var ids []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 && a.Key != "first-check" {
			ids = append(ids, a.Key)
		}
	}
	if len(ids) == 0 {
		h.scriptError("%s: which slot?", d.Cmd)
	}
	var jobs []*ddJob
	h.mu.Lock()
	if len(ids) == 1 && ids[0] == "all" {
		for _, j := range h.held {
			if j.a.Kind == kind {
				jobs = append(jobs, j)
			}
		}
	} else {
		taken := map[*ddJob]bool{}
		for _, id := range ids {
			i := slices.IndexFunc(h.held, func(j *ddJob) bool { return j.a.Kind == kind && j.a.ID == id && !taken[j] })
			if i < 0 {
				h.mu.Unlock()
				h.scriptError("no held %s %s", kind, id)
			}
			taken[h.held[i]] = true
			jobs = append(jobs, h.held[i])
		}
	}
	h.mu.Unlock()
	for _, j := range jobs {
		h.mu.Lock()
		h.held = slices.DeleteFunc(h.held, func(x *ddJob) bool { return x == j })
		h.outcome.connErr, h.outcome.checkErr, h.outcome.slot = nil, nil, j.a.ID
		switch {
		case kind == fsm.Connect && d.HasArg("first-check"):
			h.outcome.checkErr = fail
		case kind == fsm.Connect:
			h.outcome.connErr = fail
		default:
			h.outcome.checkErr = fail
		}
		h.mu.Unlock()
		h.runJob(j)
	}
}

// runJob runs one held job: its I/O here, off the loop, then its
// completion with the loop held; then the pool settles.
func (h *ddHarness) runJob(j *ddJob) {
	done := j.job()
	h.p.loop.Enter()
	done()
	h.p.loop.Leave()
	h.settle()
}

func (h *ddHarness) claim(d *datadriven.TestData) {
	name := h.oneName(d)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ddClaimerKey{}, name))
	if d.HasArg("ctx") {
		h.cancelledArg(d)
		cancel()
	}
	try := d.HasArg("try")
	c := &ddClaimer{name: name, ctx: ctx, cancel: cancel}
	h.mu.Lock()
	if h.claimer(name) != nil {
		h.mu.Unlock()
		h.scriptError("claim %s exists", name)
	}
	h.claimers = append(h.claimers, c)
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		claim := h.p.Claim
		if try {
			claim = h.p.TryClaim
		}
		hd, err := claim(ctx)
		h.mu.Lock()
		c.done, c.h, c.err = true, hd, err
		h.mu.Unlock()
	}()
}

// cancelledArg checks the one context argument there is: ctx=cancelled.
func (h *ddHarness) cancelledArg(d *datadriven.TestData) {
	var v string
	d.ScanArgs(h.t, "ctx", &v)
	if v != "cancelled" {
		h.scriptError("ctx=cancelled is the only context")
	}
}

func (h *ddHarness) close(d *datadriven.TestData) {
	name := "close"
	if len(d.CmdArgs) > 0 && len(d.CmdArgs[0].Vals) == 0 {
		name = d.CmdArgs[0].Key
	}
	ctx, cancel := context.WithCancel(context.Background())
	if d.HasArg("ctx") {
		h.cancelledArg(d)
		cancel()
	}
	h.p.loop.Enter()
	first := !h.p.closing()
	h.p.loop.Leave()
	k := &ddCloser{name: name, ctx: ctx, cancel: cancel, first: first}
	h.mu.Lock()
	h.closers = append(h.closers, k)
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		err := h.p.Close(ctx)
		h.mu.Lock()
		k.done, k.err = true, err
		h.closeReturned = true
		h.mu.Unlock()
	}()
}

// stable reports, with the loop held, whether every claim and close is
// either done or blocked until a later command.
func (h *ddHarness) stable() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.claimers {
		if c.done || c.hook != nil {
			continue
		}
		if c.ctx.Err() != nil || !h.queued(c.name) {
			return false
		}
	}
	for _, k := range h.closers {
		if k.done {
			continue
		}
		if k.ctx.Err() != nil {
			return false
		}
		if k.first {
			// Blocked until nothing is left, unless nothing is.
			if h.p.state.Get() != machine.Stopping || isClosed(h.p.quiet) {
				return false
			}
		} else if isClosed(h.p.done) {
			return false
		}
	}
	return true
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// queued reports whether the claim called name waits in the queue. The
// loop must be held.
func (h *ddHarness) queued(name string) bool {
	for w := h.p.waiters.head; w != nil; w = w.next {
		if w.ctx.Value(ddClaimerKey{}) == name {
			return true
		}
	}
	return false
}

// settle waits until every claim and close is stable, and fires the timers
// due now, until neither changes anything.
func (h *ddHarness) settle() {
	for {
		for i := 0; ; i++ {
			h.p.loop.Enter()
			ok := h.stable()
			h.p.loop.Leave()
			if ok {
				break
			}
			if i > 10_000_000 {
				h.t.Fatalf("claims and closes never settled")
			}
			runtime.Gosched()
		}
		h.p.loop.Enter()
		n := h.p.loop.RunDue()
		h.p.loop.Leave()
		if n == 0 {
			return
		}
	}
}

// tick advances the clock by d, stopping at every deadline on the way.
func (h *ddHarness) tick(d time.Duration, out *strings.Builder) {
	end := h.clk.Now().Add(d)
	for {
		h.settle()
		h.flush(out)
		h.p.loop.Enter()
		next, ok := h.p.loop.NextDeadline()
		h.p.loop.Leave()
		if !ok || next.After(end) {
			break
		}
		if next.After(h.clk.Now()) {
			h.clk.Set(next)
		}
	}
	h.clk.Set(end)
	h.settle()
	h.flush(out)
}

// flush prints the lines of the events run so far, then what claims and
// closes did.
func (h *ddHarness) flush(out *strings.Builder) {
	h.p.loop.Enter()
	defer h.p.loop.Leave()
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clk.Now()
	for _, c := range h.claimers {
		var s string
		switch {
		case c.done && c.err != nil:
			s = "error: " + c.err.Error()
		case c.done:
			s = "claimed " + c.h.sl.ID()
		case c.hook != nil:
			s = c.hookWhat + " on " + c.hookOn
		default:
			s = "queued"
		}
		if s != c.printed {
			c.printed = s
			h.lines = append(h.lines, ddLine{at: now, text: c.name + ": " + s})
		}
	}
	for _, k := range h.closers {
		if k.done && !k.printed {
			k.printed = true
			s := "closed"
			if k.err != nil {
				s = "error: " + k.err.Error()
			}
			h.lines = append(h.lines, ddLine{at: now, text: k.name + ": " + s})
		}
	}
	for i, l := range h.lines {
		if !l.at.Equal(h.printedAt) {
			h.printedAt = l.at
			fmt.Fprintf(out, "+%v\n", l.at.Sub(h.start))
		}
		out.WriteString(l.text)
		if l.fails != "" && !slices.ContainsFunc(h.lines[i+1:], func(x ddLine) bool { return strings.HasPrefix(x.text, "slot "+l.fails+":") }) {
			if sl := h.slot(l.fails); sl != nil && sl.State() == slot.Failed && sl.t.Pending() {
				fmt.Fprintf(out, " (backoff %v)", sl.t.When(h.p.loop).Sub(l.at))
			}
		}
		out.WriteString("\n")
	}
	h.lines = h.lines[:0]
}

// slot returns the slot called id, or nil once it stopped. The loop must
// be held.
func (h *ddHarness) slot(id string) *pslot[*ddConn] {
	for _, s := range h.p.order {
		for _, sl := range s.slots {
			if sl.ID() == id {
				return sl
			}
		}
	}
	return nil
}

func (h *ddHarness) stats(out *strings.Builder) {
	st := h.p.Stats()
	h.mu.Lock()
	open := len(h.open)
	h.mu.Unlock()
	fmt.Fprintf(out, "pool %s: slots %s; waiters %d; open connections %d\n", st.State, slotCounts(st.Slots), st.Waiters, open)
	fmt.Fprintf(out, "claims %d, connects %d, failures %d, discards %d, closes %d", st.Claims, st.Connects, st.Failures, st.Discards, st.Closes)
	if st.Misuse > 0 {
		fmt.Fprintf(out, ", misuse %d", st.Misuse)
	}
	if st.Breaks > 0 {
		fmt.Fprintf(out, ", breaks %d", st.Breaks)
	}
	ce := st.ClaimErrors
	if ce != (ClaimErrors{}) {
		fmt.Fprintf(out, "; claim errors: no backends %d, none online %d, all used %d, closed %d, context %d",
			ce.NoBackends, ce.NoBackendsOnline, ce.AllClaimsUsed, ce.Closed, ce.Context)
		for _, k := range []struct {
			name string
			n    uint64
		}{{"no idle", ce.NoIdle}, {"shed", ce.Shed}, {"queue full", ce.QueueFull}, {"circuit open", ce.CircuitOpen}} {
			if k.n > 0 {
				fmt.Fprintf(out, ", %s %d", k.name, k.n)
			}
		}
	}
	for _, b := range st.Backends {
		if b.Reports > 0 || b.Ejections > 0 {
			fmt.Fprintf(out, "; %s: reports %d, latency %v, errors %d, ejected %v (%d times)", b.Name, b.Reports, b.Latency, b.BackendErrors, b.Ejected, b.Ejections)
		}
	}
	if st.Resets > 0 {
		fmt.Fprintf(out, "; resets %d, expired %d", st.Resets, st.Expired)
	}
	out.WriteString("\n")
	for _, b := range st.Backends {
		fmt.Fprintf(out, "%s %s: wanted %d, slots %s; failures %d, %d in a row", b.Name, b.State, b.Wanted, slotCounts(b.Slots), b.Failures, b.ConsecutiveFailures)
		if b.Lost > 0 || b.Refused > 0 {
			fmt.Fprintf(out, " (lost %d, refused %d)", b.Lost, b.Refused)
		}
		if b.Capacity > 0 {
			fmt.Fprintf(out, "; capacity %d", b.Capacity)
		}
		if b.Overloaded > 0 {
			fmt.Fprintf(out, "; overloaded %d", b.Overloaded)
		}
		if b.HeldFor > 0 {
			fmt.Fprintf(out, "; held for %v", b.HeldFor)
		}
		if b.SlowStart > 0 {
			fmt.Fprintf(out, "; slow start %d", b.SlowStart)
		}
		if b.Dead {
			out.WriteString("; dead")
		}
		out.WriteString("\n")
	}
	if st.LastError != "" {
		fmt.Fprintf(out, "last error: %s\n", st.LastError)
	}
	if st.PolicyError != "" {
		fmt.Fprintf(out, "policy error: %s\n", st.PolicyError)
	}
}

func slotCounts(c SlotCounts) string {
	var parts []string
	for _, f := range []struct {
		n    int
		name string
	}{{c.Connecting, "connecting"}, {c.Connected, "connected"}, {c.Claimed, "claimed"}, {c.Recycling, "recycling"}, {c.Checking, "checking"}, {c.Failed, "failed"}} {
		if f.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", f.n, f.name))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", c.Total, strings.Join(parts, ", "))
}

// timers prints the pool's pending deadlines, earliest first.
func (h *ddHarness) timers(out *strings.Builder) {
	type pending struct {
		when time.Time
		what string
	}
	var ts []pending
	add := func(t *fsm.Timer, what string) {
		if t.Pending() {
			ts = append(ts, pending{t.When(h.p.loop), what})
		}
	}
	p := h.p
	p.loop.Enter()
	add(&p.rebalance, "rebalance")
	add(&p.decohere, "decoherence")
	for _, s := range p.order {
		for _, sl := range s.slots {
			what := map[slot.State]string{slot.Failed: "backoff", slot.Connecting: "connect timeout",
				slot.Checking: "check timeout", slot.Recycling: "recycle timeout",
				slot.Connected: "health check", slot.Claimed: "health check"}[sl.State()]
			if sl.State() == slot.Connected && sl.expireAt != 0 && sl.t.When(p.loop).Equal(p.loop.Time(sl.expireAt)) {
				what = "lifetime end"
			}
			if what != "" {
				add(&sl.t, sl.ID()+" "+what)
			}
		}
	}
	for w := p.waiters.head; w != nil; w = w.next {
		add(&w.timer, fmt.Sprintf("%v claim timeout", w.ctx.Value(ddClaimerKey{})))
	}
	p.loop.Leave()
	slices.SortStableFunc(ts, func(a, b pending) int { return a.when.Compare(b.when) })
	for _, t := range ts {
		fmt.Fprintf(out, "+%v %s\n", t.when.Sub(h.start), t.what)
	}
	if len(ts) == 0 {
		out.WriteString("none\n")
	}
}

// finish closes the pool if the script did not, ends every claim and
// runs every held job, then checks that each connection opened was closed
// exactly once and that no goroutine is left.
func (h *ddHarness) finish() {
	if h.p == nil {
		return
	}
	h.mu.Lock()
	for _, c := range h.claimers {
		c.cancel()
		if c.hook != nil {
			c.hook <- errors.New("script ended")
			c.hook = nil
		}
	}
	for _, k := range h.closers {
		k.cancel()
	}
	h.mu.Unlock()
	// With their contexts ended, claims and closes return without I/O.
	h.wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// With its context done, Close returns without waiting for the jobs
	// held; run them afterwards, those they lead to included.
	_ = h.p.Close(ctx)
	h.mu.Lock()
	h.closeReturned = true
	h.mu.Unlock()
	for {
		h.mu.Lock()
		held := h.held
		h.held = nil
		h.mu.Unlock()
		if len(held) == 0 {
			break
		}
		for _, j := range held {
			h.mu.Lock()
			h.outcome.connErr, h.outcome.checkErr, h.outcome.slot = nil, nil, j.a.ID
			h.mu.Unlock()
			done := j.job()
			h.p.loop.Enter()
			done()
			h.p.loop.Leave()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.open) > 0 || h.doubles > 0 {
		h.t.Errorf("after Close: %d connections open, %d closed twice", len(h.open), h.doubles)
	}
	if len(h.late) > 0 {
		h.t.Errorf("connector called after Close returned: %v", h.late)
	}
}

// fixedWant is a rebalancer that wants the same number of slots on every
// backend, online or not (within its cap): a policy under which a
// backend whose connects fail holds several slots.
type fixedWant int

func (n fixedWant) Rebalance(in RebalanceInput, want []int) {
	for i := range want {
		want[i] = min(int(n), in.Sets[i].Cap)
	}
}
