package sim

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// modulePath is the path of the module the simulator belongs to.
const modulePath = "github.com/qorbgo/qorb"

// Build names the code that produced a result, so that a result read
// later says what ran it.
type Build struct {
	// Module is the version of the qorb module from the binary's build
	// information: a tag, a pseudo-version, or "(devel)" for a build of
	// the module itself from a work tree; "unknown" when the binary has no
	// build information.
	Module string `json:"module"`
	// Go is the Go version that compiled the binary (runtime.Version).
	Go string `json:"go"`
}

// CurrentBuild returns the Build of the running binary.
func CurrentBuild() Build { return currentBuild() }

var currentBuild = sync.OnceValue(func() Build {
	b := Build{Module: "unknown", Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	switch {
	case info.Main.Path == modulePath:
		b.Module = info.Main.Version
	default:
		for _, d := range info.Deps {
			if d.Path == modulePath {
				b.Module = d.Version
				if d.Replace != nil {
					b.Module = d.Replace.Version
				}
			}
		}
		if b.Module == "unknown" && info.Main.Version != "" {
			b.Module = info.Main.Version // a test binary, or a copy of the module under another path
		}
	}
	if b.Module == "" {
		b.Module = "(devel)"
	}
	return b
})
