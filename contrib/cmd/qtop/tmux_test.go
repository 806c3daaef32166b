package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// screenFileEnv names a file where TestTmux writes the last screen it read
// (docs/qtop.md shows one).
const screenFileEnv = "QTOP_SCREEN_FILE"

// tmuxSession runs a command in a detached tmux session of its own server.
type tmuxSession struct {
	t      *testing.T
	tmux   string
	socket string
}

func (s tmuxSession) cmd(args ...string) (string, error) {
	out, err := exec.Command(s.tmux, append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	return string(out), err
}

// capture returns the pane's text.
func (s tmuxSession) capture() string {
	out, err := s.cmd("capture-pane", "-p", "-t", "qtop")
	if err != nil {
		s.t.Fatalf("capture-pane: %v: %s", err, out)
	}
	return out
}

// waitScreen reads the screen every 100 ms until ok accepts it, at most
// 20 s, and returns it.
func (s tmuxSession) waitScreen(what string, ok func(string) bool) string {
	s.t.Helper()
	const limit = 20 * time.Second
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(limit)
	scr := ""
	for range int(limit / (100 * time.Millisecond)) {
		scr = s.capture()
		if ok(scr) {
			return scr
		}
		if time.Now().After(end) {
			break
		}
		<-tick.C
	}
	s.t.Fatalf("after %v the screen does not show %s:\n%s", limit, what, scr)
	return ""
}

// backendState returns the state column of the backend's row, or "".
func backendState(scr, name string) string {
	for l := range strings.SplitSeq(scr, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == name {
			return f[1]
		}
	}
	return ""
}

// TestTmux runs qtop for real in a 100×30 tmux pane against a pool over
// three loopback echo servers, kills one server, and reads the screen
// until that backend's row shows it offline; then q quits.
func TestTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed: this test runs qtop in a tmux pane (apt-get install -y tmux; .ci/run installs it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	servers := []*echoServer{startEcho(t), startEcho(t), startEcho(t)}
	url := servePools(t, "echo", servers...)

	s := tmuxSession{t: t, tmux: tmux, socket: fmt.Sprintf("qtop-test-%d", os.Getpid())}
	if out, err := s.cmd("-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "30", "-s", "qtop",
		"env", runMainEnv+"=1", "TERM=xterm-256color", exe, "-interval", "250ms", url); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { s.cmd("kill-server") })

	names := make([]string, len(servers))
	for i, srv := range servers {
		names[i] = srv.addr.String()
	}
	s.waitScreen("every backend online with claims/s", func(scr string) bool {
		for _, n := range names {
			if backendState(scr, n) != "online" {
				return false
			}
		}
		return strings.Contains(scr, "claims/s ") && !strings.Contains(scr, "claims/s -")
	})

	servers[0].kill()
	scr := s.waitScreen(names[0]+" offline or failing", func(scr string) bool {
		st := backendState(scr, names[0])
		return st == "offline" || st == "failing"
	})
	t.Logf("the screen with %s killed:\n%s", names[0], scr)
	for _, n := range names[1:] {
		if st := backendState(scr, n); st != "online" {
			t.Errorf("backend %s: %q, want online", n, st)
		}
	}
	if !strings.Contains(scr, "pools: [1 echo]") || !strings.Contains(scr, "echo running") {
		t.Errorf("no pool header:\n%s", scr)
	}
	if f := os.Getenv(screenFileEnv); f != "" {
		if err := os.WriteFile(f, []byte(scr), 0o644); err != nil {
			t.Error(err)
		}
	}

	// q quits: the session ends with its only pane.
	if out, err := s.cmd("send-keys", "-t", "qtop", "q"); err != nil {
		t.Fatalf("send-keys: %v: %s", err, out)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		if _, err := s.cmd("has-session", "-t", "qtop"); err != nil {
			break // gone
		}
		if i >= 200 {
			t.Fatalf("qtop still runs 10 s after q:\n%s", s.capture())
		}
		<-tick.C
	}
}
