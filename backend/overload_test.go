package backend_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/qorbgo/qorb/backend"
)

func TestOverloaded(t *testing.T) {
	cause := errors.New("53300: sorry, too many clients already")
	err := fmt.Errorf("connect db-1: %w", backend.Overloaded(cause, 5*time.Second))
	if !errors.Is(err, backend.ErrOverloaded) || !errors.Is(err, cause) {
		t.Fatalf("%v: want it to wrap ErrOverloaded and its cause", err)
	}
	if ra, ok := backend.IsOverloaded(err); !ok || ra != 5*time.Second {
		t.Fatalf("IsOverloaded = %v, %v; want 5s, true", ra, ok)
	}
	if got, want := err.Error(), "connect db-1: 53300: sorry, too many clients already (overloaded: retry after 5s)"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	// Without a retry-after, and with a negative one.
	for _, d := range []time.Duration{0, -time.Second} {
		e := backend.Overloaded(cause, d)
		if ra, ok := backend.IsOverloaded(e); !ok || ra != 0 {
			t.Fatalf("Overloaded(%v): IsOverloaded = %v, %v; want 0, true", d, ra, ok)
		}
		if got := e.Error(); got != cause.Error()+" (overloaded)" {
			t.Fatalf("Error() = %q", got)
		}
	}
	// ErrOverloaded wrapped by hand says so too; other errors do not.
	if _, ok := backend.IsOverloaded(fmt.Errorf("x: %w", backend.ErrOverloaded)); !ok {
		t.Fatal("a wrapped ErrOverloaded is not overloaded")
	}
	if _, ok := backend.IsOverloaded(cause); ok {
		t.Fatal("a plain error is overloaded")
	}
	if _, ok := backend.IsOverloaded(nil); ok {
		t.Fatal("nil is overloaded")
	}
	if got := backend.Overloaded(nil, 0).Error(); got != "backend: server overloaded" {
		t.Fatalf("Overloaded(nil, 0).Error() = %q", got)
	}
	if got := backend.Overloaded(nil, time.Second).Error(); got != "backend: server overloaded: retry after 1s" {
		t.Fatalf("Overloaded(nil, 1s).Error() = %q", got)
	}
}

// A connector marks the server's refusal under load, with the time the
// server asked for; the pool then leaves the backend alone that long.
func ExampleOverloaded() {
	refusal := errors.New("server: too many clients")
	err := backend.Overloaded(refusal, 2*time.Second)
	ra, ok := backend.IsOverloaded(err)
	fmt.Println(err)
	fmt.Println(ok, ra)
	// Output:
	// server: too many clients (overloaded: retry after 2s)
	// true 2s
}
