package prompool_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/contrib/prompool"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// session stands in for a real connection type (net.Conn, *pgx.Conn, ...).
type session struct{}

// sessions is a Connector that opens sessions in memory.
type sessions struct{}

func (sessions) Connect(context.Context, backend.Backend) (*session, error) { return &session{}, nil }
func (sessions) Close(*session) error                                       { return nil }

// The Collector is the pool's tracer (for the histograms and the
// timeouts) and collects the pool's counters at each scrape once the pool
// is watched.
func Example() {
	ctx := context.Background()
	c := prompool.New()
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 4},
		pool.WithName("orders"), pool.WithTracer(c))
	if err != nil {
		panic(err)
	}
	defer p.Close(ctx)
	if err := c.Watch(p); err != nil {
		panic(err)
	}
	// In a service: prometheus.MustRegister(c) and promhttp.Handler(), or
	// a registry of your own served with promhttp.HandlerFor.
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	h, err := p.Claim(ctx)
	if err != nil {
		panic(err)
	}
	show(reg, "qorb_pool_connections", "used")
	h.Release()
	show(reg, "qorb_pool_connections_max", "")
	show(reg, "qorb_pool_claims_total", "")
	show(reg, "qorb_pool_connection_wait_seconds", "")
	// Output:
	// qorb_pool_connections{pool="orders",state="used"} 1
	// qorb_pool_connections_max{pool="orders"} 4
	// qorb_pool_claims_total{pool="orders"} 1
	// qorb_pool_connection_wait_seconds{pool="orders"} 1 observed
}

// show prints the samples of the family name, of the given state if any.
func show(g prometheus.Gatherer, name, state string) {
	mfs, err := g.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := ""
			match := state == ""
			for _, l := range m.GetLabel() {
				if labels != "" {
					labels += ","
				}
				labels += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
				match = match || l.GetName() == "state" && l.GetValue() == state
			}
			if !match {
				continue
			}
			switch {
			case m.GetHistogram() != nil:
				fmt.Printf("%s{%s} %d observed\n", name, labels, m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil:
				fmt.Printf("%s{%s} %v\n", name, labels, m.GetCounter().GetValue())
			default:
				fmt.Printf("%s{%s} %v\n", name, labels, m.GetGauge().GetValue())
			}
		}
	}
}

// A pg.Pool (contrib/pg) is a Source: pass the Collector as its tracer and
// watch it. It needs a PostgreSQL server, so it is compiled but not run.
func Example_pg() {
	c := prompool.New()
	p, err := pg.Open("postgres://app@db.example.com:5432/app?pool_max_conns=16",
		pool.WithName("app-db"), pool.WithTracer(c))
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	if err := c.Watch(p); err != nil {
		panic(err)
	}
	prometheus.MustRegister(c)
}
