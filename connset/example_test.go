package connset_test

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/connset"
	"github.com/qorbgo/qorb/resolver"
)

// stream stands in for a multiplexed connection (an HTTP/2 or gRPC
// client connection).
type stream struct{ to backend.Name }

type streams struct{}

func (streams) Connect(_ context.Context, b backend.Backend) (*stream, error) {
	return &stream{to: b.Name}, nil
}
func (streams) Close(*stream) error { return nil }

func ExampleNew() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:8001"),
		netip.MustParseAddrPort("127.0.0.1:8002"), netip.MustParseAddrPort("127.0.0.1:8003"))
	var mu sync.Mutex
	up := map[backend.Name]bool{}
	full := make(chan struct{})
	set, err := connset.New(r, backend.Connector[*stream](streams{}), connset.Config[*stream]{
		Target: 2,
		Added: func(b backend.Backend, s *stream) {
			mu.Lock()
			defer mu.Unlock()
			up[b.Name] = true
			if len(up) == 2 {
				close(full)
			}
		},
	})
	if err != nil {
		panic(err)
	}
	<-full
	var names []string
	for _, m := range set.Members() {
		names = append(names, string(m.Conn.to))
	}
	sort.Strings(names)
	fmt.Println(len(names), "connections, to distinct backends:", names[0] != names[1], set.State())
	_ = set.Close(context.Background())
	fmt.Println(set.State())
	// Output:
	// 2 connections, to distinct backends: true full
	// closed
}
