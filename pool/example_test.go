package pool_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/qorbgo/qorb/backend"
	"github.com/qorbgo/qorb/fsm"
	"github.com/qorbgo/qorb/pool"
	"github.com/qorbgo/qorb/resolver"
)

// session stands in for a real connection type (net.Conn, *pgx.Conn, ...).
type session struct{ backend backend.Name }

// sessions is a Connector that opens sessions in memory.
type sessions struct{}

func (sessions) Connect(_ context.Context, b backend.Backend) (*session, error) {
	return &session{backend: b.Name}, nil
}

func (sessions) Close(*session) error { return nil }

func ExamplePool() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 4})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())

	h, err := p.Claim(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("claimed a session to", h.Conn().backend)
	h.Release()
	// Output: claimed a session to 127.0.0.1:5432
}

func ExampleWithObserver() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"))
	print := fsm.ObserverFunc(func(t fsm.Transition) {
		fmt.Printf("%s[%s] %s --%s--> %s\n", t.Kind(), t.ID, t.FromName(), t.EventName(), t.ToName())
	})
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 1, SparesWanted: 1},
		pool.WithObserver(print), pool.WithName("db"))
	if err != nil {
		panic(err)
	}
	h, err := p.Claim(context.Background())
	if err != nil {
		panic(err)
	}
	h.Release()
	p.Close(context.Background())
	// Output:
	// resolver[fixed] resolving --answer--> resolved
	// slot[127.0.0.1:5432/0]  --create--> connecting
	// slot[127.0.0.1:5432/0] connecting --connect_ok--> connected
	// set[127.0.0.1:5432] offline --up--> online
	// pool[db] starting --backend_up--> running
	// slot[127.0.0.1:5432/0] connected --claim--> claimed
	// slot[127.0.0.1:5432/0] claimed --release--> recycling
	// slot[127.0.0.1:5432/0] recycling --recycle_ok--> connected
	// pool[db] running --close--> stopping
	// resolver[fixed] resolved --stop--> stopped
	// set[127.0.0.1:5432] online --remove--> draining
	// slot[127.0.0.1:5432/0] connected --stop--> stopped
	// set[127.0.0.1:5432] draining --drained--> stopped
	// pool[db] stopping --closed--> stopped
}

func ExamplePool_Stats() {
	r := resolver.NewFixed(netip.MustParseAddrPort("127.0.0.1:5432"), netip.MustParseAddrPort("127.0.0.1:5433"))
	p, err := pool.New(r, backend.Connector[*session](sessions{}), pool.Policy{MaxSlots: 4, SparesWanted: 4})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	h, err := p.Claim(context.Background())
	if err != nil {
		panic(err)
	}
	defer h.Release()
	st := p.Stats()
	fmt.Println("pool:", st.State, "claimed:", st.Slots.Claimed)
	for _, b := range st.Backends {
		fmt.Println("backend", b.Name)
	}
	// Output:
	// pool: running claimed: 1
	// backend 127.0.0.1:5432
	// backend 127.0.0.1:5433
}
