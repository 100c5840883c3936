// Package testbin builds the daemon's binary for the tests that run it, with
// the Dockerfile's own build command, once per test process.
//
// Building the binary costs most of a cold `go test`: every package compiled
// again. So each binary is built once per test process and shared by every test
// that runs it (Main, called from TestMain, owns the directory), and:
//   - Binary, for tests that run the daemon, compiles with `go test`'s own
//     settings, whose compiled packages are already in the build cache, and adds
//     only the Dockerfile's link flags (the version stamps): a link, not a build;
//   - Dockerfile runs the Dockerfile's full command (-trimpath, netgo, no
//     cgo, another GOARCH): a compile of everything per platform, so only with
//     TEST_CROSS_COMPILE=1, as .ci/run sets.
package testbin

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

// builds are this test process's binaries; Main sets dir. (Package state, as
// a test process builds each binary once for all its tests.)
var builds = struct {
	dir string
	mu  sync.Mutex
	by  map[string]*build
}{by: map[string]*build{}}

type build struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests of m with a directory for the binaries, removed after;
// call it from TestMain: os.Exit(testbin.Main(m)).
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rancher-ecr-credentials-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	builds.dir = dir
	defer os.RemoveAll(dir)
	return testskip.Main(m) // skips for want of a server are told to the terminal
}

// BuildArgs are the Dockerfile build args the tests stamp, and what they
// expect to read back.
var BuildArgs = map[string]string{"VERSION": "v9.9.9-test", "REVISION": "0123456789abcdef0123456789abcdef01234567",
	"CREATED": "2025-01-02T03:04:05Z"}

// Binary returns the binary for this machine: compiled as `go test`
// compiles, linked with the Dockerfile's -ldflags.
func Binary(t testing.TB) string {
	t.Helper()
	return shared(t, "host", func(_, args []string) ([]string, []string) {
		out := []string{"go", "build"}
		for i := 0; i < len(args); i++ {
			if args[i] == "-ldflags" || args[i] == "-o" {
				out = append(out, args[i], args[i+1])
				i++
			}
		}
		return nil, append(out, ".") // and go test's own environment
	}, map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH})
}

// Dockerfile builds the binary for goos/goarch with the Dockerfile's whole
// build command, TARGETOS/TARGETARCH and the build args filled in.
func Dockerfile(t testing.TB, goos, goarch string) string {
	t.Helper()
	if os.Getenv("TEST_CROSS_COMPILE") != "1" {
		t.Skip("compiles every package for " + goos + "/" + goarch + " (about a minute of CPU each): set TEST_CROSS_COMPILE=1 (.ci/run does)")
	}
	return shared(t, goos+"-"+goarch, func(env, args []string) ([]string, []string) { return env, args },
		map[string]string{"TARGETOS": goos, "TARGETARCH": goarch})
}

// shared runs the Dockerfile's build command (its environment assignments
// and arguments, reshaped by shape) in the repository root with the build
// args and vars filled in, once per key, and returns the binary's path.
func shared(t testing.TB, key string, shape func(env, args []string) ([]string, []string), vars map[string]string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if builds.dir == "" {
		t.Fatal("testbin: call testbin.Main from the package's TestMain")
	}
	root := Root(t)
	args := BuildCommand(t)
	builds.mu.Lock()
	b, ok := builds.by[key]
	if !ok {
		b = &build{}
		builds.by[key] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() {
		b.path = filepath.Join(builds.dir, key, "rancher-ecr-credentials")
		vars := maps.Clone(vars)
		maps.Copy(vars, BuildArgs)
		expand := func(s string) string {
			return os.Expand(s, func(k string) string {
				if _, ok := vars[k]; !ok {
					b.err = fmt.Errorf("the Dockerfile's build command uses ${%s}, which the tests do not know", k)
				}
				return vars[k]
			})
		}
		var env []string
		for len(args) > 0 && strings.Contains(args[0], "=") {
			env, args = append(env, expand(args[0])), args[1:]
		}
		for i, a := range args {
			args[i] = expand(a)
			if a == "/out/rancher-ecr-credentials" {
				args[i] = b.path
			}
		}
		env, args = shape(env, args)
		if b.err != nil {
			return
		}
		// Not the first caller's context: the build is shared by every test.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir, cmd.Env = root, append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%s %v: %v\n%s", strings.Join(env, " "), args, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Root is the repository's root: the directory of go.mod, above the test's.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
