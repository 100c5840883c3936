// Package testskip skips a test for want of a real server (kube-apiserver and
// etcd, moto_server, the real Rancher server) so that a person running
// `go test ./...` learns of it.
//
// In package-list mode the go command prints nothing of a passing package's
// output, skips included: only "ok". So each skip is counted, and when the
// package's test binary ends (Main, from its TestMain) one line is written
// where the person who ran `go test` reads: the go command's own standard
// error (the test binary's parent's; a terminal, or the pipe of a log), else
// the controlling terminal, /dev/tty. It says how many tests skipped for want
// of which server and the command that provides it:
//
//	./internal/app: SKIPPED 4 tests for want of kube-apiserver and etcd (KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test ./...)
//
// A go command whose standard error is a regular file (a log) gets the line
// in that file, written through the go command's own open file so that its
// later lines follow it (where the kernel lets a process share its parent's
// file, else at the terminal only: a second writer with an offset of its own
// would overwrite the file's lines). CI (.ci/run) sets
// REQUIRE_KUBE=1 and REQUIRE_MOTO=1, and REQUIRE_RANCHER=1 where the real
// Rancher binary is cached, under which a skip is a failure. The go command would replay a cached "ok" without running the
// binary, and the line would not come again: a package that skipped is kept
// out of the test cache (see uncache).
//
// The counts live in the test binary's process (package state): a test
// binary is one package's tests, and its TestMain is where they are reported.
package testskip

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a real server some tests need.
type Server struct {
	// Name says what is missing, as the line says it.
	Name string
	// Require is the variable that, set to 1, makes a skip a failure (CI).
	Require string
	// Provide is the one command (or step) that provides the server.
	Provide string
}

// The servers the project's tests run against (README, "Development").
var (
	Kube = Server{Name: "kube-apiserver and etcd", Require: "REQUIRE_KUBE",
		Provide: "KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test ./..."}
	Moto = Server{Name: "moto_server", Require: "REQUIRE_MOTO",
		Provide: "pip install 'moto[server]', then go test ./..."}
	Rancher = Server{Name: "the real Rancher server", Require: "REQUIRE_RANCHER",
		Provide: "build its binary once as docs/testing-rancher.md says, then KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test ./..."}
)

// Counter counts skips per server, in the order servers were first missed.
type Counter struct {
	mu    sync.Mutex
	order []Server
	n     map[string]int
}

// Add counts one skip for want of s.
func (c *Counter) Add(s Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	if c.n[s.Name] == 0 {
		c.order = append(c.order, s)
	}
	c.n[s.Name]++
}

// Line is what the terminal is told of pkg's skips, "" when there were none.
func (c *Counter) Line(pkg string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for i, s := range c.order {
		n, unit := c.n[s.Name], ""
		switch {
		case i > 0:
		case n == 1:
			unit = " test"
		default:
			unit = " tests"
		}
		parts = append(parts, fmt.Sprintf("%d%s for want of %s (%s)", n, unit, s.Name, s.Provide))
	}
	if len(parts) == 0 {
		return ""
	}
	return pkg + ": SKIPPED " + strings.Join(parts, "; ")
}

// skipped are this test binary's skips; uncacheOnce keeps it out of the test
// cache at its first skip.
var (
	skipped     Counter
	uncacheOnce sync.Once
)

// Skip skips t for want of s, reason saying what is missing and how to
// provide it, and counts the skip; with s.Require=1 it fails t instead.
func Skip(t testing.TB, s Server, reason string) {
	t.Helper()
	skipped.skip(t, s, reason, func() {
		// During the tests: the go command learns of no file opened after them.
		uncacheOnce.Do(func() {
			root, _ := moduleRoot()
			uncache(root)
		})
	})
}

// skip is Skip counting into c; mark is called before a counted skip.
func (c *Counter) skip(t testing.TB, s Server, reason string, mark func()) {
	t.Helper()
	if os.Getenv(s.Require) == "1" {
		t.Fatalf("%s (%s=1 makes this a failure)", reason, s.Require)
		return
	}
	c.Add(s)
	mark()
	t.Skipf("SKIP (no %s): %s", s.Name, reason)
}

// Main runs m and then reports its skips; call it from TestMain:
// os.Exit(testskip.Main(m)), or from a helper's own Main.
func Main(m *testing.M) int {
	code := m.Run()
	Report(&skipped, moduleRoot, openTerminal)
	return code
}

// Report writes c's line through open (where the person reads) when there were skips,
// naming the package by its directory (where); a terminal that cannot be
// opened gets nothing.
func Report(c *Counter, where func() (root, pkg string), open func() (io.WriteCloser, error)) {
	if c.Line("") == "" {
		return
	}
	_, pkg := where()
	w, err := open()
	if err != nil {
		return
	}
	defer w.Close()
	_, _ = io.WriteString(w, c.Line(pkg)+"\n")
}

// openTerminal opens where the person who ran `go test` reads: the go
// command's standard error (proc(5), /proc/<pid>/fd): a terminal, a pipe or
// a socket opened again; a regular file (a log) shared with the go command, so that
// neither overwrites the other's lines (shareStderr); else the controlling
// terminal the test binary shares with it.
func openTerminal() (io.WriteCloser, error) {
	parent := fmt.Sprintf("/proc/%d/fd/2", os.Getppid())
	if fi, err := os.Stat(parent); err == nil {
		switch mode := fi.Mode(); {
		case mode&(os.ModeNamedPipe|os.ModeCharDevice|os.ModeSocket) != 0:
			if f, err := os.OpenFile(parent, os.O_WRONLY|os.O_APPEND, 0); err == nil {
				return f, nil
			}
		case mode.IsRegular():
			if f, err := shareStderr(os.Getppid()); err == nil {
				return f, nil
			}
		}
	}
	return os.OpenFile("/dev/tty", os.O_WRONLY, 0)
}

// MarkerName is the file uncache opens, at the module's root (.gitignore
// lists it).
const MarkerName = ".tests-skipped"

// uncache keeps this run's result out of the go command's test cache, so the
// next `go test ./...` runs the package again and says its skips again. The
// go command does not cache a run that opened a regular file of the module
// modified less than two seconds before it looks (cmd/go/internal/test,
// computeTestInputsID, hashOpen, errFileTooNew; files outside the module are
// not looked at): the test binary opens a marker file at the module's root
// whose modification time is set ahead. A run without skips never opens it
// and is cached as usual. A read-only checkout keeps the cache (and the line
// comes on the first run only).
func uncache(root string) {
	if root == "" {
		return
	}
	path := filepath.Join(root, MarkerName)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	f.Close()
	ahead := time.Now().Add(time.Hour)
	if os.Chtimes(path, ahead, ahead) != nil {
		return
	}
	if f, err := os.Open(path); err == nil { // the open the go command sees (testlog)
		f.Close()
	}
}

// moduleRoot is the directory of the go.mod above the working directory (the
// go command runs a test binary in its package's directory), and the
// package's directory relative to it.
func moduleRoot() (root, pkg string) {
	wd, err := os.Getwd()
	if err != nil {
		return "", "this package"
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, err := filepath.Rel(dir, wd)
			if err != nil || rel == "." {
				return dir, "."
			}
			return dir, "./" + filepath.ToSlash(rel)
		}
		if filepath.Dir(dir) == dir {
			return "", wd
		}
	}
}
