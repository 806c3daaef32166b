// Command pg runs a qorb pool of PostgreSQL connections (package
// contrib/pg) over the servers that DNS lists for a service, does a small
// bounded workload on it and prints the pool's stats:
//
//	go run ./examples/pg [-dns HOST:PORT] [-service _postgresql._tcp.qorbpg.test.] [-duration 2s] [-workers 8] [-ops 20000]
//
// The defaults are what the CI scripts set up: .ci/pg-servers.sh starts
// three PostgreSQL servers on 127.0.0.1, and .ci/dns-server.sh serves
// their SRV records from NSD (run each with install, then start, from the
// repository's root) and prints the DNS server's address as
// QORB_DNS_SERVER, which is -dns's default.
//
// Each worker runs, in turn, a query (which server answered, through
// inet_server_port()), a transaction and a batch, until the duration ends
// or the workers together have run -ops operations. The program prints the
// operations each server answered, then the pool's stats per backend, then
// closes the pool. It exits 1 when an operation failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qorbgo/qorb/contrib/pg"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver/dns"
)

func main() {
	server := flag.String("dns", os.Getenv("QORB_DNS_SERVER"),
		"the DNS server to ask (host:port; default $QORB_DNS_SERVER, as .ci/dns-server.sh start prints it)")
	service := flag.String("service", "_postgresql._tcp.qorbpg.test.", "the SRV name of the PostgreSQL servers")
	conn := flag.String("conn", "user=postgres dbname=postgres sslmode=disable application_name=qorb-example",
		"the pgx connection string; the host and port come from DNS")
	duration := flag.Duration("duration", 2*time.Second, "how long the workload runs at most")
	workers := flag.Int("workers", 8, "goroutines running operations")
	ops := flag.Int("ops", 20000, "operations to run at most, across the workers")
	flag.Parse()
	if *server == "" {
		fmt.Fprintln(os.Stderr, "pg: no DNS server: give -dns HOST:PORT, or export QORB_DNS_SERVER (.ci/dns-server.sh start prints it)")
		os.Exit(2)
	}
	addr, err := netip.ParseAddrPort(*server)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pg: -dns %q: %v\n", *server, err)
		os.Exit(2)
	}
	if *duration <= 0 || *workers <= 0 || *ops <= 0 {
		fmt.Fprintln(os.Stderr, "pg: -duration, -workers and -ops must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, config{dns: addr, service: *service, conn: *conn,
		duration: *duration, workers: *workers, ops: int64(*ops)}); err != nil {
		fmt.Fprintln(os.Stderr, "pg:", err)
		os.Exit(1)
	}
}

// config is the program's flags.
type config struct {
	dns      netip.AddrPort
	service  string
	conn     string
	duration time.Duration
	workers  int
	ops      int64
}

func run(ctx context.Context, out io.Writer, c config) error {
	r, err := dns.New(c.service, []netip.AddrPort{c.dns}, dns.Config{})
	if err != nil {
		return err
	}
	p, err := pg.New(r, pg.Config{ConnString: c.conn}, pool.Policy{
		MaxSlots:       9,
		SparesWanted:   3,
		ClaimTimeout:   5 * time.Second,
		ConnectTimeout: 3 * time.Second,
		BackoffMax:     time.Second,
		HealthInterval: time.Second,
	}, pool.WithName("example"))
	if err != nil {
		return err
	}
	defer p.Close(context.Background()) //nolint:errcheck // closed below; this is for early returns

	fmt.Fprintf(out, "pool over %s (DNS %v): %d workers, at most %d operations or %v\n\n",
		c.service, c.dns, c.workers, c.ops, c.duration)
	w := &workload{byPort: map[int32]int64{}}
	start := time.Now()
	end := start.Add(c.duration)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			// Workers stop between operations, so that none is cut short
			// (pgx closes a connection whose statement's context ends).
			for i := 0; ctx.Err() == nil && time.Now().Before(end) && w.issued.Add(1) <= c.ops; i++ {
				w.one(ctx, p, i)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)

	st := p.Stats()
	fmt.Fprintf(out, "%d operations in %v: %d ok, %d failed\n", w.ok.Load()+w.failed.Load(), took.Round(time.Millisecond),
		w.ok.Load(), w.failed.Load())
	ports := w.ports()
	for _, port := range ports {
		fmt.Fprintf(out, "  server on port %d answered %d queries\n", port, w.count(port))
	}
	fmt.Fprintln(out)
	printStats(out, st)

	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	if err := p.Close(closeCtx); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	fmt.Fprintln(out, "pool closed")
	if n := w.failed.Load(); n > 0 {
		return fmt.Errorf("%d operations failed; the first: %w", n, w.firstErr())
	}
	if len(st.Backends) == 0 {
		return errors.New("DNS listed no backend")
	}
	return nil
}

// workload counts the operations and which server answered them.
type workload struct {
	issued, ok, failed atomic.Int64

	mu     sync.Mutex
	byPort map[int32]int64
	first  error
}

// one runs operation i: a query, a transaction or a batch.
func (w *workload) one(ctx context.Context, p *pg.Pool, i int) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	switch i % 3 {
	case 0:
		var port int32
		if err = p.QueryRow(ctx, "select inet_server_port()").Scan(&port); err == nil {
			w.mu.Lock()
			w.byPort[port]++
			w.mu.Unlock()
		}
	case 1:
		err = pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "select pg_sleep(0.001)")
			return err
		})
	case 2:
		b := &pgx.Batch{}
		b.Queue("select 1")
		b.Queue("select now()")
		err = p.SendBatch(ctx, b).Close()
	}
	switch {
	case err == nil:
		w.ok.Add(1)
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		// Interrupted during the operation.
	default:
		w.failed.Add(1)
		w.mu.Lock()
		if w.first == nil {
			w.first = err
		}
		w.mu.Unlock()
	}
}

func (w *workload) ports() []int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int32
	for p := range w.byPort {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (w *workload) count(port int32) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byPort[port]
}

func (w *workload) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

// printStats prints the pool's totals and a table of its backends.
func printStats(out io.Writer, st pool.Stats) {
	fmt.Fprintf(out, "pool %s: %s; %d slots (%d connected, %d claimed); %d claims, %d connects, %d failures; resolver %s\n",
		st.Name, st.State, st.Slots.Total, st.Slots.Connected, st.Slots.Claimed, st.Claims, st.Connects, st.Failures,
		st.Resolver.State)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tstate\tslots\tconnected\tclaimed\tclaims\tconnects\tfailures\t")
	for _, b := range st.Backends {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", b.Name, b.State, b.Slots.Total, b.Slots.Connected,
			b.Slots.Claimed, b.Claims, b.Connects, b.Failures)
	}
	tw.Flush()
	for _, b := range st.Backends {
		if b.LastError != "" {
			fmt.Fprintf(out, "%s: last error: %s\n", b.Name, b.LastError)
		}
	}
}
