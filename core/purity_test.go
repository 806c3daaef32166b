package core

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The core imports only what computes: no context, no lock, no clock, no
// I/O, no goroutine. A new import must be added here on purpose.
var allowedImports = map[string]bool{
	"cmp": true, "errors": true, "fmt": true, "math": true, "math/bits": true,
	"slices": true, "sort": true, "strconv": true, "strings": true,
	"time": true, // for time.Duration and time.Time values only: see forbiddenCalls
}

// forbiddenCalls are the parts of package time that read the clock or
// start a timer.
var forbiddenCalls = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true,
}

// purityViolations returns what in the Go files of dir (tests excluded)
// breaks the core's rules, one line each.
func purityViolations(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		timeName := ""
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			if !allowedImports[path] {
				bad = append(bad, fset.Position(im.Pos()).String()+": imports "+path)
			}
			if path == "time" {
				timeName = "time"
				if im.Name != nil {
					timeName = im.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				bad = append(bad, fset.Position(n.Pos()).String()+": starts a goroutine")
			case *ast.ChanType:
				bad = append(bad, fset.Position(n.Pos()).String()+": uses a channel")
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && forbiddenCalls[n.Sel.Name] {
					bad = append(bad, fset.Position(n.Pos()).String()+": reads the clock (time."+n.Sel.Name+")")
				}
			}
			return true
		})
	}
	return bad
}

func TestCoreIsPure(t *testing.T) {
	for _, v := range purityViolations(t, ".") {
		t.Error(v)
	}
}

// The check itself finds what it must: a file that breaks every rule.
func TestPurityCheckFindsViolations(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import (
	"context"
	"sync"
	tm "time"
)

var mu sync.Mutex

func f(ctx context.Context) {
	go func() {}()
	var c chan int
	_ = c
	_ = tm.Now()
}
`
	if err := writeFile(filepath.Join(dir, "x.go"), src); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(purityViolations(t, dir), "\n")
	for _, want := range []string{"imports context", "imports sync", "starts a goroutine", "uses a channel", "reads the clock (time.Now)"} {
		if !strings.Contains(got, want) {
			t.Errorf("violations do not say %q:\n%s", want, got)
		}
	}
}
