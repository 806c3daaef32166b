//go:build ignore

// Freeport prints N loopback ports that are free right now, for TCP and UDP
// both, one a line, for the servers of .ci/pg-servers.sh and
// .ci/dns-server.sh:
//
//	go run .ci/freeport.go [-x PORT,PORT,...] N
//
// It asks the kernel: a port is free when it binds 127.0.0.1:PORT over TCP
// and over UDP. All N stay bound until all are found, so they differ, and
// none of -x is given. They are drawn at random below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range), never in it: the kernel
// gives ephemeral ports to outgoing connections, and one could take the port
// of a server that a test stops and starts again. A port free now may be
// taken before the server binds it; the scripts then draw another.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the lowest port drawn: above the ports services usually have.
const lowest = 10000

func main() {
	exclude := flag.String("x", "", "ports not to give, comma-separated")
	flag.Parse()
	n, err := strconv.Atoi(flag.Arg(0))
	if flag.NArg() != 1 || err != nil || n < 1 || n > 100 {
		fmt.Fprintln(os.Stderr, "usage: go run .ci/freeport.go [-x PORT,...] N (1..100)")
		os.Exit(2)
	}
	skip := map[int]bool{}
	for _, s := range strings.Split(*exclude, ",") {
		if p, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			skip[p] = true
		}
	}
	lo, hi := lowest, ephemeralLow()-1
	if hi-lo < 1000 {
		lo, hi = 1024, 65535 // no room below the range: anywhere
	}
	var held []func()
	defer func() {
		for _, release := range held {
			release()
		}
	}()
	var ports []int
	for try := 0; len(ports) < n; try++ {
		if try == 10000 {
			fmt.Fprintf(os.Stderr, "freeport: found %d free ports of %d in %d..%d\n", len(ports), n, lo, hi)
			os.Exit(1)
		}
		p := lo + rand.IntN(hi-lo+1)
		if skip[p] {
			continue
		}
		if release, ok := bind(p); ok {
			held = append(held, release)
			skip[p] = true
			ports = append(ports, p)
		}
	}
	for _, p := range ports {
		fmt.Println(p)
	}
}

// bind holds 127.0.0.1:p over TCP and UDP, or reports that it cannot.
func bind(p int) (release func(), ok bool) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, false
	}
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		l.Close()
		return nil, false
	}
	return func() { l.Close(); u.Close() }, true
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when
// it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	p, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return p
}
