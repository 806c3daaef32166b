package byname

import (
	"fmt"
	"sync"
	"testing"
)

func TestGetMakesOncePerNameAndDeleteForgets(t *testing.T) {
	var b Map[int]
	var mu sync.Mutex
	made := map[string]int{}
	mk := func(name string) func() *int {
		return func() *int {
			mu.Lock()
			defer mu.Unlock()
			made[name]++
			v := len(name)
			return &v
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				name := fmt.Sprintf("pool-%d", (g+i)%3)
				if v := b.Get(name, mk(name)); *v != len(name) {
					t.Errorf("%s: %d", name, *v)
				}
			}
		})
	}
	wg.Wait()
	for _, n := range []string{"pool-0", "pool-1", "pool-2"} {
		if made[n] != 1 {
			t.Errorf("%s made %d times", n, made[n])
		}
	}
	first := b.Get("pool-0", mk("pool-0"))
	b.Delete("pool-0")
	if again := b.Get("pool-0", mk("pool-0")); again == first || made["pool-0"] != 2 {
		t.Fatalf("after Delete: same value %v, made %d times", again == first, made["pool-0"])
	}
}
