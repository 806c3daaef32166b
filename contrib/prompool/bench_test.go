package prompool_test

import (
	"context"
	"testing"
	"time"

	"github.com/qorbgo/qorb/contrib/prompool"
	"github.com/qorbgo/qorb/pool"
)

// BenchmarkTrace measures what the tracer adds to a claim and its release
// (claim start, claim end, release), in parallel on every core.
func BenchmarkTrace(b *testing.B) {
	c := prompool.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			x := c.TraceClaimStart(ctx, pool.ClaimStartData{Pool: "orders"})
			c.TraceClaimEnd(x, pool.ClaimEndData{Pool: "orders", Wait: time.Millisecond})
			c.TraceRelease(pool.ReleaseData{Pool: "orders", Held: 5 * time.Millisecond})
		}
	})
}
