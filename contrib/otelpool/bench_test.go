package otelpool_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/qorbgo/qorb/contrib/otelpool"
	"github.com/qorbgo/qorb/pool"
)

// BenchmarkTrace measures what the tracer adds to a claim and its release
// (claim start, claim end, release), in parallel on every core.
func BenchmarkTrace(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	m, err := otelpool.New(otelpool.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			c := m.TraceClaimStart(ctx, pool.ClaimStartData{Pool: "orders"})
			m.TraceClaimEnd(c, pool.ClaimEndData{Pool: "orders", Wait: time.Millisecond})
			m.TraceRelease(pool.ReleaseData{Pool: "orders", Held: 5 * time.Millisecond})
		}
	})
}
