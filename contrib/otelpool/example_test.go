package otelpool_test

import (
	"context"
	"fmt"
	"net/netip"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/contrib/otelpool"
	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// session stands in for a real connection type (net.Conn, *pgx.Conn, ...).
type session struct{}

// sessions is a Connector that opens sessions in memory.
type sessions struct{}

func (sessions) Connect(context.Context, backend.Backend) (*session, error) { return &session{}, nil }
func (sessions) Close(*session) error                                       { return nil }

// The Metrics is the pool's tracer (for the wait, use and create times and
// the timeouts) and observes the pool's counters once the pool exists.
func Example() {
	ctx := context.Background()
	// In a service: the global provider, or an SDK provider with an OTLP
	// or Prometheus exporter. Here a manual reader shows what is recorded.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)

	m, err := otelpool.New(otelpool.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 4},
		pool.WithName("orders"), pool.WithTracer(m))
	if err != nil {
		panic(err)
	}
	defer p.Close(ctx)
	reg, err := m.Observe(p)
	if err != nil {
		panic(err)
	}
	defer reg.Unregister()

	h, err := p.Claim(ctx)
	if err != nil {
		panic(err)
	}
	show(reader, "db.client.connection.count", attribute.String("db.client.connection.state", "used"))
	show(reader, "db.client.connection.max")
	h.Release()
	show(reader, "db.client.connection.wait_time")
	show(reader, "db.client.connection.use_time")
	// Output:
	// db.client.connection.count {connection} pool orders: 1
	// db.client.connection.max {connection} pool orders: 4
	// db.client.connection.wait_time s pool orders: 1 recorded
	// db.client.connection.use_time s pool orders: 1 recorded
}

// show prints the data point of the named instrument with attrs.
func show(reader *sdkmetric.ManualReader, name string, attrs ...attribute.KeyValue) {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					if matches(dp.Attributes, attrs) {
						pl, _ := dp.Attributes.Value("db.client.connection.pool.name")
						fmt.Printf("%s %s pool %s: %d\n", name, m.Unit, pl.AsString(), dp.Value)
					}
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					pl, _ := dp.Attributes.Value("db.client.connection.pool.name")
					fmt.Printf("%s %s pool %s: %d recorded\n", name, m.Unit, pl.AsString(), dp.Count)
				}
			}
		}
	}
}

// A pg.Pool (contrib/pg) is a Source: pass the Metrics as its tracer and
// observe it. It needs a PostgreSQL server, so it is compiled but not run.
func Example_pg() {
	m, err := otelpool.New() // the global meter provider
	if err != nil {
		panic(err)
	}
	p, err := pg.Open("postgres://app@db.example.com:5432/app?pool_max_conns=16",
		pool.WithName("app-db"), pool.WithTracer(m))
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	reg, err := m.Observe(p)
	if err != nil {
		panic(err)
	}
	defer reg.Unregister()
}
