// Package e2e runs the built daemon as users do: the binary with the
// Dockerfile's own flags, against moto (the real AWS SDK), the stand-ins, a
// forward proxy and a real kube-apiserver.
package e2e

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
)

// TestMain builds the binary once for every test of the package.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

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
			bin := testbin.Dockerfile(t, "linux", p.arch)
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
			for _, v := range testbin.BuildArgs { // (with -trimpath, Go leaves -ldflags out of the build settings)
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
	bin := testbin.Binary(t)

	t.Run("Version", func(t *testing.T) {
		t.Parallel()
		want := fmt.Sprintf("rancher-ecr-credentials v9.9.9-test\n  commit:  %s\n  built:   %s\n  go:      %s %s/%s\n",
			testbin.BuildArgs["REVISION"], testbin.BuildArgs["CREATED"], runtime.Version(), runtime.GOOS, runtime.GOARCH)
		for _, arg := range []string{"--version", "version"} {
			out, err := exec.CommandContext(t.Context(), bin, arg).Output()
			if err != nil || string(out) != want {
				t.Errorf("%s = %q, %v; want %q", arg, out, err, want)
			}
		}
	})
	t.Run("HealthcheckAndSIGTERM", func(t *testing.T) {
		t.Parallel()
		port := testbin.FreePort(t)
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
