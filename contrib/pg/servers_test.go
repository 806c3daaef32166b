package pg_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver/dns"
)

// service is the SRV name of the servers of .ci/pg-servers.sh in the zone
// .ci/dns-server.sh serves (testdata/zones/qorbpg.test.zone).
const service = "_postgresql._tcp.qorbpg.test."

const howToRun = "export what .ci/pg-servers.sh start and .ci/dns-server.sh start print " +
	"(after their install), or run bash .ci/run"

// servers are the real PostgreSQL servers the tests run against.
type servers struct {
	addrs []netip.AddrPort
	dirs  []string // data directories, same order
	pgctl string
	dns   netip.AddrPort // zero without QORB_DNS_SERVER
}

// needServers returns the servers of QORB_PG_SERVERS and QORB_PG_DIRS, and
// skips the test when they are not set.
func needServers(t *testing.T) *servers {
	t.Helper()
	list, dirs := os.Getenv("QORB_PG_SERVERS"), os.Getenv("QORB_PG_DIRS")
	if list == "" || dirs == "" {
		t.Skip("QORB_PG_SERVERS and QORB_PG_DIRS are not set; " + howToRun)
	}
	s := &servers{dirs: strings.Split(dirs, ",")}
	for _, a := range strings.Split(list, ",") {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			t.Fatalf("QORB_PG_SERVERS=%q: %v", list, err)
		}
		if !ap.Addr().IsLoopback() {
			t.Fatalf("QORB_PG_SERVERS=%q: %v is not a loopback address", list, ap)
		}
		s.addrs = append(s.addrs, ap)
	}
	if len(s.addrs) != len(s.dirs) || len(s.addrs) < 3 {
		t.Fatalf("QORB_PG_SERVERS=%q and QORB_PG_DIRS=%q: want three or more servers, one directory each", list, dirs)
	}
	s.pgctl = os.Getenv("QORB_PG_CTL")
	if s.pgctl == "" {
		// The newest installed version, as .ci/pg-servers.sh picks it.
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
		version := func(path string) int {
			v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
			return v
		}
		slices.SortFunc(found, func(a, b string) int { return version(a) - version(b) })
		if len(found) == 0 {
			t.Fatal("no pg_ctl: set QORB_PG_CTL (printed by .ci/pg-servers.sh start)")
		}
		s.pgctl = found[len(found)-1]
	}
	if d := os.Getenv("QORB_DNS_SERVER"); d != "" {
		ap, err := netip.ParseAddrPort(d)
		if err != nil {
			t.Fatalf("QORB_DNS_SERVER=%q: %v", d, err)
		}
		s.dns = ap
	}
	return s
}

// needDNS is needServers for tests that find the servers through DNS.
func needDNS(t *testing.T) *servers {
	t.Helper()
	s := needServers(t)
	if !s.dns.IsValid() {
		t.Skip("QORB_DNS_SERVER is not set; " + howToRun)
	}
	return s
}

// resolver returns a DNS resolver of the servers' SRV records.
func (s *servers) resolver(t *testing.T) *dns.Resolver {
	t.Helper()
	r, err := dns.New(service, []netip.AddrPort{s.dns}, dns.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// index returns the position of the server of backend b.
func (s *servers) index(t *testing.T, b string) int {
	t.Helper()
	for i, a := range s.addrs {
		if strings.HasSuffix(b, "@"+a.String()) || b == a.String() {
			return i
		}
	}
	t.Fatalf("backend %q is none of the servers %v", b, s.addrs)
	return -1
}

// pgctl runs pg_ctl on the i-th server's data directory, as the postgres
// user when the test runs as root (the servers refuse to run as root).
func (s *servers) ctl(t *testing.T, i int, args ...string) {
	t.Helper()
	args = append([]string{"-D", s.dirs[i]}, args...)
	name := s.pgctl
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.dirs[i] // postgres may not read the test's directory
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// kill stops the i-th server at once (pg_ctl stop -m immediate): every
// session ends without a goodbye, as when the machine dies.
func (s *servers) kill(t *testing.T, i int) {
	t.Helper()
	s.ctl(t, i, "-m", "immediate", "-w", "-t", "30", "stop")
}

// start starts the i-th server and waits until it accepts connections.
func (s *servers) start(t *testing.T, i int) {
	t.Helper()
	s.ctl(t, i, "-l", filepath.Join(s.dirs[i], "server.log"), "-w", "-t", "30", "start")
}

// running reports whether the i-th server runs.
func (s *servers) running(i int) bool {
	args := []string{"-D", s.dirs[i], "status"}
	name := s.pgctl
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dirs[i]
	return cmd.Run() == nil
}

// restartAllAtEnd makes sure every server runs when the test ends, so that
// a failed test does not leave the next one without its servers.
func (s *servers) restartAllAtEnd(t *testing.T) {
	t.Cleanup(func() {
		for i := range s.dirs {
			if !s.running(i) {
				s.start(t, i)
			}
		}
	})
}

// admin opens a plain pgx connection (no pool) to the i-th server.
func (s *servers) admin(t *testing.T, i int) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := s.addrs[i]
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable application_name=qorb-admin",
		a.Addr(), a.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// exec runs sql on every server, each through its own admin connection.
func (s *servers) exec(t *testing.T, sql string) {
	t.Helper()
	for i := range s.addrs {
		if _, err := s.admin(t, i).Exec(context.Background(), sql); err != nil {
			t.Fatalf("server %d: %s: %v", i, sql, err)
		}
	}
}

// sum returns the sum over every server of the integer query sql returns.
func (s *servers) sum(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var total int64
	for i := range s.addrs {
		var n int64
		if err := s.admin(t, i).QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
			t.Fatalf("server %d: %s: %v", i, sql, err)
		}
		total += n
	}
	return total
}

// sessions counts the sessions named app on every server.
func (s *servers) sessions(t *testing.T, app string) int64 {
	t.Helper()
	return s.sum(t, "select count(*) from pg_stat_activity where application_name = $1", app)
}

// connString is the configuration of the pools under test: the host and
// port are the pool's to fill in.
func connString(app string) string {
	return "user=postgres dbname=postgres sslmode=disable connect_timeout=5 application_name=" + app
}

// fastPolicy is a policy with short intervals, so that tests of failures
// and recovery take seconds.
var fastPolicy = pool.Policy{
	SparesWanted:       4,
	MaxSlots:           12,
	MaxSlotsPerBackend: 8,
	ClaimTimeout:       10 * time.Second,
	RebalanceInterval:  250 * time.Millisecond,
	BackoffMin:         20 * time.Millisecond,
	BackoffMax:         time.Second,
	BackoffJitter:      50 * time.Millisecond,
	ConnectTimeout:     3 * time.Second,
	HealthInterval:     200 * time.Millisecond,
	HealthTimeout:      time.Second,
}

// waitFor polls cond until it holds or bound passes, and returns how long
// it took. It is for states of real servers, which no event announces.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// backendStats returns the stats of the backend of the i-th server.
func backendStats(t *testing.T, s *servers, st pool.Stats, i int) pool.BackendStats {
	t.Helper()
	for _, b := range st.Backends {
		if s.index(t, b.Name) == i {
			return b
		}
	}
	return pool.BackendStats{}
}
