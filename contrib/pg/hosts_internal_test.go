package pg

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/resolver"
)

// fakeHost is a resolver.Host that runs queries at once, in the caller's
// goroutine, and records what the resolver reports.
type fakeHost struct {
	updates [][]backend.Backend
	errs    []error
	timer   *fakeTimer
	now     time.Time
}

type fakeTimer struct {
	f     func()
	armed []time.Duration // every Reset, in order
}

func (t *fakeTimer) Reset(d time.Duration) { t.armed = append(t.armed, d) }
func (t *fakeTimer) Stop()                 {}

func (h *fakeHost) Querying()                      {}
func (h *fakeHost) Update(bs []backend.Backend)    { h.updates = append(h.updates, slices.Clone(bs)) }
func (h *fakeHost) ReportError(err error)          { h.errs = append(h.errs, err) }
func (h *fakeHost) Go(q func() func())             { q()() }
func (h *fakeHost) Now() time.Time                 { return h.now }
func (h *fakeHost) Rand() *rand.Rand               { return rand.New(rand.NewPCG(1, 2)) }
func (h *fakeHost) Log(slog.Level, string, ...any) {}
func (h *fakeHost) Do(f func())                    { f() }
func (h *fakeHost) NewTimer(f func()) resolver.Timer {
	h.timer = &fakeTimer{f: f}
	return h.timer
}

// names returns the names of bs.
func names(bs []backend.Backend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, string(b.Name))
	}
	return out
}

// The hosts of a connection string, with libpq's multi-host syntax, each
// once in their order; a Unix socket or no host is an error.
func TestConfigHosts(t *testing.T) {
	for _, tc := range []struct {
		conn string
		want []hostPort
	}{
		{"postgres://app@db.example.com:6432/app", []hostPort{{"db.example.com", 6432}}},
		{"postgres://app@a.example.com:5432,10.0.0.2:5433/app?sslmode=prefer",
			[]hostPort{{"a.example.com", 5432}, {"10.0.0.2", 5433}}},
		{"host=a,b,a port=1,2,1 user=app sslmode=disable", []hostPort{{"a", 1}, {"b", 2}}},
	} {
		cc, err := pgx.ParseConfig(tc.conn)
		if err != nil {
			t.Fatal(err)
		}
		got, err := configHosts(cc)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.conn, got, err, tc.want)
		}
	}
	cc, err := pgx.ParseConfig("host=/var/run/postgresql user=app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := configHosts(cc); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "Unix socket") {
		t.Errorf("a Unix socket: %v, want an ErrConfig naming it", err)
	}
}

// Addresses are backends at once; names are looked up, each address one
// backend named NAME@ADDR:PORT, looked up again every HostRequery; a
// failed lookup keeps what the name resolved to and retries sooner.
func TestHostResolver(t *testing.T) {
	cc, err := pgx.ParseConfig("postgres://app@db.example.com:5432,10.0.0.9:5433/app")
	if err != nil {
		t.Fatal(err)
	}
	answer := []string{"10.0.0.1", "::ffff:10.0.0.2", "not an address"}
	var lookupErr error
	var asked []string
	cc.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("lookup without a deadline")
		}
		asked = append(asked, host)
		return answer, lookupErr
	}
	r, err := newHostResolver(cc)
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{}
	r.Start(h)
	want := []string{"db.example.com@10.0.0.1:5432", "db.example.com@10.0.0.2:5432", "10.0.0.9:5433"}
	if len(h.updates) != 1 || !slices.Equal(names(h.updates[0]), want) || len(h.errs) != 0 {
		t.Fatalf("first answer: updates %v, errors %v; want one update %v", h.updates, h.errs, want)
	}
	if !slices.Equal(asked, []string{"db.example.com"}) {
		t.Errorf("looked up %q, want only the name", asked)
	}
	if !slices.Equal(h.timer.armed, []time.Duration{HostRequery}) {
		t.Errorf("next lookup in %v, want [%v]", h.timer.armed, HostRequery)
	}
	if got := hostServerName(h.updates[0][0]); got != "db.example.com" {
		t.Errorf("TLS server name of %s: %q, want the host's name", h.updates[0][0].Name, got)
	}
	if got := hostServerName(h.updates[0][2]); got != "10.0.0.9" {
		t.Errorf("TLS server name of %s: %q, want the address", h.updates[0][2].Name, got)
	}

	// The name's address changes.
	answer = []string{"10.0.0.3"}
	h.timer.f()
	want = []string{"db.example.com@10.0.0.3:5432", "10.0.0.9:5433"}
	if got := names(h.updates[len(h.updates)-1]); !slices.Equal(got, want) {
		t.Errorf("after the change: %v, want %v", got, want)
	}

	// The lookup fails twice: the set is kept, the error reported, and
	// the retries come sooner than the re-query, doubling.
	lookupErr = errors.New("server misbehaving")
	h.timer.f()
	h.timer.f()
	if got := names(h.updates[len(h.updates)-1]); !slices.Equal(got, want) {
		t.Errorf("after a failed lookup: %v, want the last set %v", got, want)
	}
	if len(h.errs) != 2 || !errors.Is(h.errs[0], lookupErr) || r.Stats().Errors != 2 || r.Stats().LastError == "" {
		t.Errorf("errors %v, stats %+v: want both failures reported", h.errs, r.Stats())
	}
	if got := h.timer.armed[len(h.timer.armed)-2:]; !slices.Equal(got, []time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("retries after %v, want 1s then 2s", got)
	}
	lookupErr = nil
	h.timer.f()
	if st := r.Stats(); st.LastError != "" || !slices.Equal(names(st.Backends), want) {
		t.Errorf("after recovery: %+v", st)
	}
	r.Stop()
}

// Addresses only: one answer, no lookup, no timer.
func TestHostResolverLiteral(t *testing.T) {
	cc, err := pgx.ParseConfig("host=127.0.0.1,::1 port=5432,5433 user=app")
	if err != nil {
		t.Fatal(err)
	}
	cc.LookupFunc = func(context.Context, string) ([]string, error) {
		t.Error("an address was looked up")
		return nil, nil
	}
	r, err := newHostResolver(cc)
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{}
	r.Start(h)
	if len(h.updates) != 1 || !slices.Equal(names(h.updates[0]), []string{"127.0.0.1:5432", "[::1]:5433"}) || h.timer != nil {
		t.Errorf("updates %v, timer %v: want one update of both addresses and no timer", h.updates, h.timer)
	}
	r.Stop()
}
