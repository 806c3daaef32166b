package qsim

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// isTerminal reports whether w is a terminal (a character device), where
// a progress line that redraws itself reads well; in a file or a pipe it
// would be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws a bar for runs longer than a second.
type progressBar struct {
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar { return &progressBar{w: w, start: time.Now()} }

func (p *progressBar) update(now, total time.Duration) {
	t := time.Now()
	done := now >= total
	if !done && (t.Sub(p.start) < time.Second || t.Sub(p.last) < 200*time.Millisecond) {
		return
	}
	if done && !p.drawn {
		return
	}
	p.last = t
	p.drawn = true
	const width = 40
	frac := 1.0
	if total > 0 {
		frac = min(float64(now)/float64(total), 1)
	}
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	fmt.Fprintf(p.w, "\r[%s] %3.0f%%  %v / %v virtual, %v wall", bar, frac*100, now.Round(time.Second), total, t.Sub(p.start).Round(100*time.Millisecond))
	if done {
		fmt.Fprintln(p.w)
	}
}

// statusLine is a line on a terminal that redraws itself, at most five
// times a second, and is cleared before other output.
type statusLine struct {
	w     io.Writer // nil: no line
	last  time.Time
	width int
}

func (l *statusLine) show(format string, a ...any) {
	if l.w == nil || time.Since(l.last) < 200*time.Millisecond {
		return
	}
	l.last = time.Now()
	s := fmt.Sprintf(format, a...)
	pad := max(l.width-len(s), 0)
	l.width = len(s)
	fmt.Fprintf(l.w, "\r%s%s", s, strings.Repeat(" ", pad))
}

func (l *statusLine) clear() {
	if l.w == nil || l.width == 0 {
		return
	}
	fmt.Fprintf(l.w, "\r%s\r", strings.Repeat(" ", l.width))
	l.width = 0
	l.last = time.Time{}
}
