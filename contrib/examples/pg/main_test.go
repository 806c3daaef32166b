package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRun runs the program against the servers of .ci/pg-servers.sh found
// through .ci/dns-server.sh: every operation succeeds and every server
// answers queries.
func TestRun(t *testing.T) {
	server, servers := os.Getenv("QORB_DNS_SERVER"), os.Getenv("QORB_PG_SERVERS")
	if server == "" || servers == "" {
		t.Skip("QORB_DNS_SERVER and QORB_PG_SERVERS are not set; export what .ci/pg-servers.sh start " +
			"and .ci/dns-server.sh start print (after their install), or run bash .ci/run")
	}
	addr, err := netip.ParseAddrPort(server)
	if err != nil {
		t.Fatalf("QORB_DNS_SERVER=%q: %v", server, err)
	}
	var out bytes.Buffer
	err = run(context.Background(), &out, config{dns: addr, service: "_postgresql._tcp.qorbpg.test.",
		conn:     "user=postgres dbname=postgres sslmode=disable application_name=qorb-example-test",
		duration: 10 * time.Second, workers: 6, ops: 600})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	for _, want := range []string{"600 operations in ", ": 600 ok, 0 failed", "pool closed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, s := range strings.Split(servers, ",") {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			t.Fatalf("QORB_PG_SERVERS=%q: %v", servers, err)
		}
		if !strings.Contains(out.String(), "@"+ap.String()+" ") {
			t.Errorf("no backend at %v in the stats:\n%s", ap, out.String())
		}
		if !strings.Contains(out.String(), "server on port "+strings.TrimPrefix(ap.String(), ap.Addr().String()+":")+" answered") {
			t.Errorf("the server at %v answered no query:\n%s", ap, out.String())
		}
	}
}
