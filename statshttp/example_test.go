package statshttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
	"github.com/qorbgo/qorb/statshttp"
)

// session stands in for a real connection type (net.Conn, *pgx.Conn, ...).
type session struct{}

// sessions is a Connector that opens sessions in memory.
type sessions struct{}

func (sessions) Connect(context.Context, backend.Backend) (*session, error) { return &session{}, nil }
func (sessions) Close(*session) error                                       { return nil }

func ExampleHandler() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 2, SparesWanted: 1})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	hd, err := p.Claim(context.Background())
	if err != nil {
		panic(err)
	}
	defer hd.Release()

	// Serve the pool's stats under /debug/qorb/.
	h := statshttp.New(statshttp.Config{})
	defer h.Close()
	if err := h.Add("db", p); err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/qorb/", http.StripPrefix("/debug/qorb", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A client reads one pool; with ?stream=1 it would get a snapshot
	// every second as server-sent events.
	resp, err := http.Get(srv.URL + "/debug/qorb/pools/db")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var st statshttp.Pool
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		panic(err)
	}
	fmt.Println("pool", st.Name, st.State, "claims:", st.Claims, "claimed:", st.Slots.Claimed)
	var waits uint64
	for _, n := range st.Waits.Counts {
		waits += n
	}
	fmt.Println("wait buckets:", st.Waits.Bounds, "waits counted:", waits)
	for _, b := range st.Backends {
		fmt.Println("backend", b.Name, b.State, "claims:", b.Claims)
	}
	fmt.Println("resolver", st.Resolver.State, len(st.Resolver.Backends), "backend")
	// Output:
	// pool db running claims: 1 claimed: 1
	// wait buckets: [0s 100µs 1ms 10ms 100ms 1s 10s] waits counted: 1
	// backend 127.0.0.1:5432 online claims: 1
	// resolver resolved 1 backend
}
