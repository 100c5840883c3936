//go:build linux

package testskip

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal: its controller, and its terminal end for a
// child's controlling terminal (pty(7): /dev/ptmx, TIOCSPTLCK, TIOCGPTN).
func openPTY(t *testing.T) (controller, terminal *os.File) {
	t.Helper()
	c, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, c.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, c.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	term, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c, term
}

// goTestCommand is `go test ./internal/testskip/testdata/skipper` in a new
// session, with no server and no REQUIRE_… (CI sets them), env added; it is
// killed when t ends or after two minutes.
func goTestCommand(t *testing.T, goTool, root string, env ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, goTool, "test", "./internal/testskip/testdata/skipper")
	cmd.Dir = root
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "KUBEBUILDER_ASSETS" && !strings.HasPrefix(k, "REQUIRE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// goTestAtTerminal runs goTestCommand as a person at a terminal does (its
// controlling terminal and standard error a pseudo-terminal, its standard
// output kept apart), and returns what the terminal showed and what the go
// command printed on its standard output.
func goTestAtTerminal(t *testing.T, goTool, root string, env ...string) (terminal, stdout string, err error) {
	t.Helper()
	c, term := openPTY(t)
	cmd := goTestCommand(t, goTool, root, env...)
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term, &out, term
	cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, 0
	shown := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c) // ends (EIO) once no process holds the terminal end
		shown <- string(b)
	}()
	err = cmd.Run()
	term.Close()
	return strings.ReplaceAll(<-shown, "\r\n", "\n"), out.String(), err
}

// skipper is what running the skipper package takes (the go command, the
// module root) and the line it must show; the test skips where the go
// command cannot run.
func skipper(t *testing.T) (goTool, root, want string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	root, _ = moduleRoot()
	return goTool, root, "./internal/testskip/testdata/skipper: SKIPPED 2 tests for want of kube-apiserver and etcd (" + Kube.Provide + "); 1 for want of moto_server (" + Moto.Provide + ")\n"
}

// What a person sees: `go test` (package-list mode, no -v) prints only "ok"
// for a package whose tests skipped, and the terminal gets one line saying
// how many skipped for want of what and the command that provides it, again
// at the next run (not replayed from the test cache). Under REQUIRE_KUBE=1
// the same package fails.
func TestMain_TellsTheTerminal(t *testing.T) {
	goTool, root, want := skipper(t)
	for run := 1; run <= 2; run++ {
		shown, stdout, err := goTestAtTerminal(t, goTool, root)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, stdout)
		}
		if shown != want {
			t.Errorf("run %d: the terminal showed %q\nwant %q", run, shown, want)
		}
		if !strings.HasPrefix(stdout, "ok  \t") || strings.Contains(stdout, "(cached)") || strings.Contains(stdout, "SKIP") {
			t.Errorf("run %d: go test printed %q, want one ok line, not cached", run, stdout)
		}
	}
	shown, stdout, err := goTestAtTerminal(t, goTool, root, "REQUIRE_KUBE=1")
	if err == nil || !strings.Contains(stdout, "no binaries here (REQUIRE_KUBE=1 makes this a failure)") || strings.Contains(shown, "kube-apiserver") {
		t.Errorf("REQUIRE_KUBE=1: %v, printed %q, terminal %q; want a failure naming REQUIRE_KUBE", err, stdout, shown)
	}
	if _, err := os.Stat(filepath.Join(root, MarkerName)); err != nil {
		t.Errorf("marker: %v", err)
	}
}

// Without a terminal (a log, an agent's captured output), the line goes to
// the go command's standard error, which that log holds, and not to its
// standard output: run after run, as at a terminal.
func TestMain_TellsTheLog(t *testing.T) {
	goTool, root, want := skipper(t)
	for run := 1; run <= 2; run++ {
		cmd := goTestCommand(t, goTool, root)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("run %d: %v\n%s%s", run, err, stdout.String(), stderr.String())
		}
		if stderr.String() != want {
			t.Errorf("run %d: the go command's standard error holds %q\nwant %q", run, stderr.String(), want)
		}
		if out := stdout.String(); !strings.HasPrefix(out, "ok  \t") || strings.Contains(out, "(cached)") || strings.Contains(out, "SKIP") {
			t.Errorf("run %d: go test printed %q, want one ok line, not cached", run, out)
		}
	}
}

// With the go command's output in files (a log, an agent's captured output),
// the line is in the file of its standard error, and nothing the go command
// writes after it overwrites it: standard error a file of its own, and both
// standard output and standard error one file (2>&1).
func TestMain_TellsTheFile(t *testing.T) {
	goTool, root, want := skipper(t)
	if f, err := shareStderr(os.Getppid()); err != nil {
		t.Skipf("this kernel does not let a process share its parent's open file (pidfd_getfd: %v): the line goes to /dev/tty", err)
	} else {
		f.Close()
	}
	dir := t.TempDir()
	create := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	read := func(f *os.File) string {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	cmd := goTestCommand(t, goTool, root)
	stdout, stderr := create("stdout"), create("stderr")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("separate files: %v\n%s%s", err, read(stdout), read(stderr))
	}
	if got := read(stderr); got != want {
		t.Errorf("separate files: standard error holds %q\nwant %q", got, want)
	}
	if out := read(stdout); !strings.HasPrefix(out, "ok  \t") || strings.Contains(out, "SKIP") {
		t.Errorf("separate files: standard output holds %q, want one ok line", out)
	}

	cmd = goTestCommand(t, goTool, root)
	both := create("both")
	cmd.Stdout, cmd.Stderr = both, both
	if err := cmd.Run(); err != nil {
		t.Fatalf("one file: %v\n%s", err, read(both))
	}
	if got := read(both); !strings.HasPrefix(got, want+"ok  \t") || strings.Count(got, "\n") != 2 {
		t.Errorf("one file holds %q\nwant %q and then the ok line", got, want)
	}
}
