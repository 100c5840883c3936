package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Building the binary costs most of a cold `go test`: every package compiled
// again. So each binary is built once per test binary and shared by every test
// that runs it (TestMain owns the directory), and:
//   - buildBinary, for tests that run the daemon, compiles with `go test`'s own
//     settings, whose compiled packages are already in the build cache, and adds
//     only the Dockerfile's link flags (the version stamps): a link, not a build;
//   - dockerfileBinary runs the Dockerfile's full command (-trimpath, netgo, no
//     cgo, another GOARCH): a compile of everything per platform, so only with
//     TEST_CROSS_COMPILE=1, as .ci/run sets.
var builds = struct {
	dir string
	mu  sync.Mutex
	by  map[string]*binaryBuild
}{by: map[string]*binaryBuild{}}

type binaryBuild struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rancher-ecr-credentials-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builds.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildArgs are the Dockerfile build args the tests stamp, and what they expect
// to read back.
var buildArgs = map[string]string{"VERSION": "v9.9.9-test", "REVISION": "0123456789abcdef0123456789abcdef01234567",
	"CREATED": "2025-01-02T03:04:05Z"}

// buildBinary returns the binary for this machine: compiled as `go test`
// compiles, linked with the Dockerfile's -ldflags.
func buildBinary(t testing.TB) string {
	t.Helper()
	return sharedBuild(t, "host", func(_, args []string) ([]string, []string) {
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

// dockerfileBinary builds the binary for goos/goarch with the Dockerfile's whole
// build command, TARGETOS/TARGETARCH and the build args filled in.
func dockerfileBinary(t *testing.T, goos, goarch string) string {
	t.Helper()
	if os.Getenv("TEST_CROSS_COMPILE") != "1" {
		t.Skip("compiles every package for " + goos + "/" + goarch + " (about a minute of CPU each): set TEST_CROSS_COMPILE=1 (.ci/run does)")
	}
	return sharedBuild(t, goos+"-"+goarch, func(env, args []string) ([]string, []string) { return env, args },
		map[string]string{"TARGETOS": goos, "TARGETARCH": goarch})
}

// sharedBuild runs the Dockerfile's build command (its environment assignments
// and arguments, reshaped by shape) with the build args and vars filled in, once
// per key, and returns the binary's path.
func sharedBuild(t testing.TB, key string, shape func(env, args []string) ([]string, []string), vars map[string]string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	args := buildCommand(t)
	builds.mu.Lock()
	b, ok := builds.by[key]
	if !ok {
		b = &binaryBuild{}
		builds.by[key] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() {
		b.path = filepath.Join(builds.dir, key, "rancher-ecr-credentials")
		vars := maps.Clone(vars)
		if vars == nil {
			vars = map[string]string{}
		}
		maps.Copy(vars, buildArgs)
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
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%s %v: %v\n%s", strings.Join(env, " "), args, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// TestCrossCompile builds the image's binary for each platform the image is
// published for, as `docker buildx build --platform linux/amd64,linux/arm64`
// does, and checks each is a static ELF for its machine, at most 32 MiB (the budget with client-go), built
// with the Dockerfile's flags and stamped with the build args.
func TestCrossCompile(t *testing.T) {
	t.Parallel()
	for _, p := range []struct {
		arch    string
		machine elf.Machine
	}{{"amd64", elf.EM_X86_64}, {"arm64", elf.EM_AARCH64}} {
		t.Run("linux-"+p.arch, func(t *testing.T) {
			t.Parallel()
			bin := dockerfileBinary(t, "linux", p.arch)
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != p.machine || f.Class != elf.ELFCLASS64 {
				t.Errorf("machine %v %v, want %v 64-bit", f.Machine, f.Class, p.machine)
			}
			for _, prog := range f.Progs {
				if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
					t.Errorf("binary has a %v program header: not static", prog.Type)
				}
			}
			fi, err := os.Stat(bin)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("linux/%s: %d bytes (%.1f MB)", p.arch, fi.Size(), float64(fi.Size())/(1<<20))
			if fi.Size() > 32<<20 {
				t.Errorf("binary is %d MiB, want at most 32 MiB", fi.Size()>>20)
			}
			bi, err := buildinfo.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			for k, want := range map[string]string{"GOOS": "linux", "GOARCH": p.arch, "CGO_ENABLED": "0", "-trimpath": "true", "-tags": "netgo"} {
				if settings[k] != want {
					t.Errorf("build setting %s = %q, want %q", k, settings[k], want)
				}
			}
			raw, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range buildArgs { // (with -trimpath, Go leaves -ldflags out of the build settings)
				if !bytes.Contains(raw, []byte(v)) {
					t.Errorf("build arg %q is not stamped into the binary", v)
				}
			}
		})
	}
}

// TestBinary runs the binary, linked with the Dockerfile's stamps: --version and
// `version` print the stamped build, and its healthcheck subcommand (the image's HEALTHCHECK) tells
// a live daemon from a dead one, which stops cleanly on SIGTERM.
func TestBinary(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)

	t.Run("Version", func(t *testing.T) {
		t.Parallel()
		want := fmt.Sprintf("rancher-ecr-credentials v9.9.9-test\n  commit:  %s\n  built:   %s\n  go:      %s %s/%s\n",
			buildArgs["REVISION"], buildArgs["CREATED"], runtime.Version(), runtime.GOOS, runtime.GOARCH)
		for _, arg := range []string{"--version", "version"} {
			out, err := exec.CommandContext(t.Context(), bin, arg).Output()
			if err != nil || string(out) != want {
				t.Errorf("%s = %q, %v; want %q", arg, out, err, want)
			}
		}
	})
	t.Run("HealthcheckAndSIGTERM", func(t *testing.T) {
		t.Parallel()
		port := freePort(t)
		health := func() error {
			c := exec.CommandContext(t.Context(), bin, "healthcheck")
			c.Env = []string{"LISTEN_PORT=" + port}
			return c.Run()
		}
		if err := health(); err == nil {
			t.Fatal("healthcheck passed with no daemon")
		}
		d := exec.CommandContext(t.Context(), bin, "--demo", "--listen-port", port)
		d.Env = []string{"PATH=" + os.Getenv("PATH")}
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- d.Wait() }()
		t.Cleanup(func() { _ = d.Process.Kill() })

		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for health() != nil {
			select {
			case <-ctx.Done():
				t.Fatal("healthcheck never passed against the running daemon")
			case err := <-exited:
				t.Fatalf("daemon exited: %v", err)
			case <-tick.C:
			}
		}
		if err := d.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit after SIGTERM: %v, want 0", err)
			}
		case <-ctx.Done():
			t.Fatal("daemon did not stop on SIGTERM")
		}
		if err := health(); err == nil {
			t.Error("healthcheck passed after the daemon stopped")
		}
	})
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
