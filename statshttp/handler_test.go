package statshttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qorbgo/qorb/pool"
)

// get fetches url and returns the status and the body.
func get(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	return resp.StatusCode, b
}

// decode decodes b into v, refusing fields v does not have.
func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// TestPoolJSON serves a real pool over loopback TCP, one backend up and one
// refusing connections, and checks the JSON of /pools/{name} field by field
// against the pool's own Stats.
func TestPoolJSON(t *testing.T) {
	live, refused := echoServer(t), refusedAddr(t)
	seen := make(transitions, 100)
	p := tcpPool(t, pool.Policy{
		MaxSlots: 2, MaxSlotsPerBackend: 1, SparesWanted: 2,
		// The refused backend's slot stays failed for the whole test.
		BackoffMin: time.Minute, BackoffMax: time.Minute,
	}, []netip.AddrPort{live, refused}, pool.WithName("echo-pool"), pool.WithObserver(seen.observer()))
	seen.await(t, "set["+live.String()+"] offline --up--> online", "slot["+refused.String()+"/0] connecting --connect_err--> failed")
	hd, err := p.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Release()

	h := New(Config{})
	if err := h.Add("echo", p); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)

	before := time.Now()
	want := FromStats("echo", time.Time{}, p.Stats())
	code, body := get(t, srv.Client(), srv.URL+"/pools/echo")
	after := time.Now()
	if code != http.StatusOK {
		t.Fatalf("GET /pools/echo: %d %s", code, body)
	}
	var got Pool
	decode(t, body, &got)

	// The stamp is the handler's clock, between the request's start and end.
	if got.At.Before(before.Truncate(time.Nanosecond)) || got.At.After(after) {
		t.Errorf("at %v, not within the request [%v, %v]", got.At, before, after)
	}
	if got.OldestClaim <= 0 || time.Duration(got.OldestClaim) > after.Sub(before)+time.Minute {
		t.Errorf("oldest_claim %v, want a positive age", got.OldestClaim)
	}
	// Field by field, what the test set up.
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", got.Name, "echo"},
		{"pool_name", got.PoolName, "echo-pool"},
		{"state", got.State, "running"},
		{"slots", got.Slots, Slots{Connecting: 0, Connected: 0, Claimed: 1, Failed: 1, Total: 2}},
		{"waiters", got.Waiters, 0},
		{"claims", got.Claims, uint64(1)},
		{"claim_errors", got.ClaimErrors, ClaimErrors{}},
		{"waits.bounds", got.Waits.Bounds, []Duration{0, Duration(100 * time.Microsecond), Duration(time.Millisecond),
			Duration(10 * time.Millisecond), Duration(100 * time.Millisecond), Duration(time.Second), Duration(10 * time.Second)}},
		{"sum of waits.counts", sum(got.Waits.Counts), uint64(1)},
		{"len(waits.counts)", len(got.Waits.Counts), 8},
		{"connects", got.Connects, uint64(2)},
		{"failures", got.Failures, uint64(1)},
		{"discards", got.Discards, uint64(0)},
		{"closes", got.Closes, uint64(0)},
		{"backoff_min >= 1m", got.BackoffMin >= Duration(time.Minute), true},
		{"len(backends)", len(got.Backends), 2},
		{"resolver.state", got.Resolver.State, "resolved"},
		{"resolver.backends", got.Resolver.Backends, []ResolvedBackend{{live.String(), live.String()}, {refused.String(), refused.String()}}},
		{"resolver.queries", got.Resolver.Queries, uint64(1)},
		{"resolver.last_answer set", got.Resolver.LastAnswer != nil, true},
	}
	if len(got.Backends) == 2 {
		up, down := got.Backends[0], got.Backends[1]
		if up.Name != live.String() {
			up, down = down, up
		}
		checks = append(checks, []struct {
			what      string
			got, want any
		}{
			{"live backend", up, Backend{Name: live.String(), Addr: live.String(), State: "online", Wanted: up.Wanted,
				Slots: Slots{Claimed: 1, Total: 1}, Claims: 1, Connects: 1}},
			{"refused backend state", down.State, "failing"},
			{"refused backend slots", down.Slots, Slots{Failed: 1, Total: 1}},
			{"refused backend failures", [3]uint64{down.Connects, down.Failures, uint64(down.ConsecutiveFailures)}, [3]uint64{1, 1, 1}},
			{"refused backend last_error says refused", strings.Contains(down.LastError, "refused"), true},
			{"pool last_error is the refused backend's", got.LastError, down.LastError},
			{"backends sorted by name", got.Backends[0].Name < got.Backends[1].Name, true},
		}...)
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.what, c.got, c.want)
		}
	}
	// And the whole view equals the pool's Stats taken just before, through
	// the same JSON.
	want.At, want.OldestClaim = got.At, got.OldestClaim
	for i := range want.Backends {
		if i < len(got.Backends) {
			want.Backends[i].LastErrorAge = got.Backends[i].LastErrorAge // it grew between the two reads
		}
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	want = Pool{}
	decode(t, wantJSON, &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("served view differs from pool.Stats:\n got %+v\nwant %+v", got, want)
	}

	// Durations are strings a person reads, and bounds too.
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"oldest_claim", "backoff_min", "backoff_max"} {
		s, ok := raw[k].(string)
		if _, err := time.ParseDuration(s); !ok || err != nil {
			t.Errorf("%s: %#v is not a duration string", k, raw[k])
		}
	}
	if b := raw["waits"].(map[string]any)["bounds"]; !reflect.DeepEqual(b, []any{"0s", "100µs", "1ms", "10ms", "100ms", "1s", "10s"}) {
		t.Errorf("waits.bounds: %#v", b)
	}
}

func sum(xs []uint64) uint64 {
	var n uint64
	for _, x := range xs {
		n += x
	}
	return n
}

// TestIndexAndAll serves two pools of different connection types and reads
// the index and the snapshot of all pools.
func TestIndexAndAll(t *testing.T) {
	tcpP := tcpPool(t, pool.Policy{MaxSlots: 1, SparesWanted: 1}, []netip.AddrPort{echoServer(t)})
	memP := memPool(t, "mem", netip.MustParseAddrPort("127.0.0.1:5432"))
	hd, err := memP.Claim(context.Background()) // running, and one claim
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Release()
	h := New(Config{})
	for name, src := range map[string]Source{"tcp": tcpP, "a b": memP} {
		if err := h.Add(name, src); err != nil {
			t.Fatal(err)
		}
	}
	srv := serve(t, h)

	code, body := get(t, srv.Client(), srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d %s", code, body)
	}
	var ix Index
	decode(t, body, &ix)
	if len(ix.Pools) != 2 || ix.At.IsZero() {
		t.Fatalf("index: %+v", ix)
	}
	if e := ix.Pools[0]; e != (IndexEntry{Name: "a b", State: "running", Path: "pools/a%20b"}) {
		t.Errorf("first entry: %+v", e)
	}
	if e := ix.Pools[1]; e.Name != "tcp" || e.Path != "pools/tcp" || e.State == "" {
		t.Errorf("second entry: %+v", e)
	}

	// The path in the index leads to the pool.
	code, body = get(t, srv.Client(), srv.URL+"/"+ix.Pools[0].Path)
	var one Pool
	decode(t, body, &one)
	if code != http.StatusOK || one.Name != "a b" || one.PoolName != "mem" || one.Claims != 1 || one.Slots.Claimed != 1 {
		t.Errorf("GET %s: %d %+v", ix.Pools[0].Path, code, one)
	}

	code, body = get(t, srv.Client(), srv.URL+"/pools")
	if code != http.StatusOK {
		t.Fatalf("GET /pools: %d %s", code, body)
	}
	var all Pools
	decode(t, body, &all)
	if len(all.Pools) != 2 || all.Pools[0].Name != "a b" || all.Pools[1].Name != "tcp" {
		t.Fatalf("pools: %+v", all)
	}
	for _, p := range all.Pools {
		if p.At.Before(all.At) || len(p.Backends) != 1 || len(p.Waits.Counts) != len(p.Waits.Bounds)+1 {
			t.Errorf("pool %s: %+v", p.Name, p)
		}
	}
	if all.Pools[0].Claims != 1 || all.Pools[1].Claims != 0 {
		t.Errorf("claims: %d and %d, want 1 and 0", all.Pools[0].Claims, all.Pools[1].Claims)
	}
}

// TestBadRequests checks that bad input gets a clear error.
func TestBadRequests(t *testing.T) {
	h := New(Config{})
	if err := h.Add("db", memPool(t, "db", netip.MustParseAddrPort("127.0.0.1:5432"))); err != nil {
		t.Fatal(err)
	}
	if err := h.Add("other", memPool(t, "other", netip.MustParseAddrPort("127.0.0.1:5433"))); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/pools/nope", 404, `statshttp: no pool named "nope"; pools: db, other`},
		{"/nothing", 404, "statshttp: no route GET /nothing"},
		{"/pools/db?interval=1ms&stream=1", 400, "shorter than the minimum, 100ms"},
		{"/pools/db?interval=soon", 400, `?interval="soon"`},
		{"/pools?stream=maybe", 400, `?stream="maybe"`},
	} {
		code, body := get(t, srv.Client(), srv.URL+tc.path)
		var e Error
		decode(t, body, &e)
		if code != tc.code || !strings.Contains(e.Error, tc.want) {
			t.Errorf("GET %s: %d %q, want %d and %q", tc.path, code, e.Error, tc.code, tc.want)
		}
	}

	resp, err := srv.Client().Post(srv.URL+"/pools", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(b), "method POST not allowed") {
		t.Errorf("POST /pools: %d %s, want 405", resp.StatusCode, b)
	}

	// After Close every request is refused.
	h.Close()
	code, body := get(t, srv.Client(), srv.URL+"/pools/db")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "closed") {
		t.Errorf("after Close: %d %s", code, body)
	}
}

func TestAdd(t *testing.T) {
	h := New(Config{})
	p := memPool(t, "db", netip.MustParseAddrPort("127.0.0.1:5432"))
	if err := h.Add("db", p); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  Source
		want error
	}{
		{"db", p, ErrDuplicate},
		{"", p, ErrBadName},
		{"a/b", p, ErrBadName},
		{"x", nil, ErrNilSource},
	} {
		if err := h.Add(tc.name, tc.src); !errors.Is(err, tc.want) {
			t.Errorf("Add(%q): %v, want %v", tc.name, err, tc.want)
		}
	}
	if !h.Remove("db") || h.Remove("db") {
		t.Error("Remove: want true then false")
	}
	if err := h.Add("db", p); err != nil {
		t.Errorf("Add after Remove: %v", err)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		json string
	}{
		{0, `"0s"`},
		{1500 * time.Millisecond, `"1.5s"`},
		{100 * time.Microsecond, `"100µs"`},
		{90 * time.Minute, `"1h30m0s"`},
	} {
		b, err := json.Marshal(Duration(tc.d))
		if err != nil || string(b) != tc.json {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.d, b, err, tc.json)
		}
		var d Duration
		if err := json.Unmarshal([]byte(tc.json), &d); err != nil || time.Duration(d) != tc.d {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", tc.json, d, err, tc.d)
		}
	}
	for _, bad := range []string{`1500`, `"soon"`, `null`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", bad, d)
		}
	}
}
