package testskip

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCounter_Line(t *testing.T) {
	t.Parallel()
	var none Counter
	if got := none.Line("./x"); got != "" {
		t.Errorf("no skip: Line = %q, want \"\"", got)
	}
	var one Counter
	one.Add(Kube)
	if got, want := one.Line("./kubeapi"), "./kubeapi: SKIPPED 1 test for want of kube-apiserver and etcd (KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test ./...)"; got != want {
		t.Errorf("Line = %q\nwant   %q", got, want)
	}
	var mixed Counter
	for _, s := range []Server{Moto, Kube, Moto, Rancher, Kube, Kube} {
		mixed.Add(s)
	}
	want := "./e2e: SKIPPED 2 tests for want of moto_server (pip install 'moto[server]', then go test ./...); " +
		"3 for want of kube-apiserver and etcd (KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test ./...); " +
		"1 for want of the real Rancher server (build its binary once as docs/testing-rancher.md says"
	if got := mixed.Line("./e2e"); !strings.HasPrefix(got, want) || strings.Count(got, "\n") != 0 {
		t.Errorf("Line = %q\nwant   %q…", got, want)
	}
}

// Parallel tests skip at once: every skip is counted.
func TestCounter_AddConcurrent(t *testing.T) {
	t.Parallel()
	var c Counter
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { c.Add(Kube) })
	}
	wg.Wait()
	if got := c.Line("."); !strings.HasPrefix(got, ".: SKIPPED 200 tests for want of kube-apiserver") {
		t.Errorf("Line = %q", got)
	}
}

// fakeTB records what a helper asked of its test.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

// A skip is counted, marked uncacheable and said; under REQUIRE_…=1 it is a
// failure, not counted.
func TestCounter_Skip(t *testing.T) {
	s := Server{Name: "a test server", Require: "TESTSKIP_REQUIRE_FOR_TEST", Provide: "make it"}
	var c Counter
	marks := 0
	tb := &fakeTB{}
	c.skip(tb, s, "it is not here", func() { marks++ })
	if tb.skipped != "SKIP (no a test server): it is not here" || tb.fatal != "" || marks != 1 {
		t.Errorf("skipped %q, fatal %q, marks %d", tb.skipped, tb.fatal, marks)
	}
	t.Setenv(s.Require, "1")
	tb = &fakeTB{}
	c.skip(tb, s, "it is not here", func() { marks++ })
	if tb.fatal != "it is not here (TESTSKIP_REQUIRE_FOR_TEST=1 makes this a failure)" || tb.skipped != "" || marks != 1 {
		t.Errorf("under %s=1: skipped %q, fatal %q, marks %d", s.Require, tb.skipped, tb.fatal, marks)
	}
	if got := c.Line("."); !strings.HasPrefix(got, ".: SKIPPED 1 test for want of a test server") {
		t.Errorf("Line = %q: the failure was counted as a skip", got)
	}
}

type buffer struct{ strings.Builder }

func (b *buffer) Close() error { return nil }

// Report writes one line when tests skipped, nothing otherwise, and nothing
// where no terminal opens.
func TestReport(t *testing.T) {
	t.Parallel()
	where := func() (string, string) { return "/nowhere", "./pkg" }
	var none Counter
	var out buffer
	opened := false
	Report(&none, where, func() (io.WriteCloser, error) { opened = true; return &out, nil })
	if opened || out.Len() != 0 {
		t.Errorf("no skip: terminal opened %v, got %q", opened, out.String())
	}
	var c Counter
	c.Add(Moto)
	Report(&c, where, func() (io.WriteCloser, error) { return &out, nil })
	if got, want := out.String(), "./pkg: SKIPPED 1 test for want of moto_server (pip install 'moto[server]', then go test ./...)\n"; got != want {
		t.Errorf("terminal got %q, want %q", got, want)
	}
	Report(&c, where, func() (io.WriteCloser, error) { return nil, errors.New("no such device or address") }) // must not panic
}

// The marker the go command sees is at the module's root, modified ahead of
// now (so "too new" to cache a run), and created when missing.
func TestUncache(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	uncache(root)
	fi, err := os.Stat(filepath.Join(root, MarkerName))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || !fi.ModTime().After(time.Now().Add(2*time.Second)) {
		t.Errorf("marker %v modified %s: want a regular file modified ahead of now", fi.Mode(), fi.ModTime())
	}
	uncache("") // no module: nothing
}

func TestModuleRoot(t *testing.T) {
	t.Parallel()
	root, pkg := moduleRoot()
	if pkg != "./internal/testskip" {
		t.Errorf("package = %q, want ./internal/testskip", pkg)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("root %q: %v", root, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, ".gitignore")); err != nil || !strings.Contains(string(b), "/"+MarkerName+"\n") {
		t.Errorf(".gitignore does not list /%s (%v)", MarkerName, err)
	}
}

// helpers are the packages whose calls skip a test for want of a server.
var helpers = []string{"internal/kubetest", "internal/mototest", "internal/rancherreal", "internal/testskip", "internal/targettest", "internal/consumertest"}

// reporters are what a TestMain calls to report the skips: testskip.Main, or
// a helper's Main that calls it (testbin.Main, and Run of a variable the
// package declares as a kubetest.Shared or rancherreal.Shared: see shared).
var reporters = []string{"testskip.Main(m)", "testbin.Main(m)"}

// shared are the helper types whose Run(m) reports the skips.
var shared = []string{"kubetest.Shared", "rancherreal.Shared"}

// Every package whose tests use a helper that skips for want of a server has
// a TestMain that reports the skips: without one they would be counted and
// never said.
func TestEveryPackageReports(t *testing.T) {
	t.Parallel()
	root, _ := moduleRoot()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			return nil
		}
		files, _ := filepath.Glob(filepath.Join(path, "*_test.go"))
		uses, reports := "", false
		var mains []string               // TestMain bodies
		calls := slices.Clone(reporters) // and the Run(m) of the package's shared servers
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, src, 0)
			if err != nil {
				return err
			}
			for _, imp := range parsed.Imports {
				for _, h := range helpers {
					if uses == "" && strings.HasSuffix(strings.Trim(imp.Path.Value, `"`), "/"+h) {
						uses = h
					}
				}
			}
			for _, decl := range parsed.Decls {
				switch d := decl.(type) {
				case *ast.FuncDecl:
					if d.Name.Name == "TestMain" && d.Recv == nil {
						mains = append(mains, string(src[d.Body.Pos()-1:d.Body.End()-1]))
					}
				case *ast.GenDecl:
					for _, spec := range d.Specs {
						v, ok := spec.(*ast.ValueSpec)
						if !ok || v.Type == nil {
							continue
						}
						if typ := string(src[v.Type.Pos()-1 : v.Type.End()-1]); slices.Contains(shared, typ) {
							for _, n := range v.Names {
								calls = append(calls, n.Name+".Run(m)")
							}
						}
					}
				}
			}
		}
		for _, body := range mains {
			for _, c := range calls {
				reports = reports || strings.Contains(body, c)
			}
		}
		if uses != "" && !reports {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("./%s uses %s but has no TestMain reporting its skips: add func TestMain(m *testing.M) { os.Exit(testskip.Main(m)) }", rel, uses)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
