// Package testproc runs the servers tests start (etcd, kube-apiserver, Rancher) as child
// processes: output into a log file, each in its own process group (so whatever it starts is
// stopped with it), stopped with SIGTERM and then SIGKILL, and killed with the test binary.
package testproc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is a started child process.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
	err     error // set before done is closed
}

// Start starts cmd (path, arguments, environment and folder set by the caller) with its output in
// logFile.
func Start(cmd *exec.Cmd, logFile string) (*Process, error) {
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{name: filepath.Base(cmd.Path), cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = out.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process exited, once Done is closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM to the process group and SIGKILL after timeout. A nil or exited process is
// fine.
func (p *Process) Stop(timeout time.Duration) error {
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	group := -p.cmd.Process.Pid
	_ = syscall.Kill(group, syscall.SIGTERM)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		_ = syscall.Kill(group, syscall.SIGKILL) // what it started and left behind
		return nil
	case <-timer.C:
		_ = syscall.Kill(group, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.name, timeout)
	}
}

// Tail returns the last n lines of the process's log, named, for failures.
func (p *Process) Tail(n int) string {
	data, err := os.ReadFile(p.logFile)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("last lines of %s:\n%s", p.logFile, LastLines(string(data), n))
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreePorts returns n distinct loopback ports that were free a moment ago.
func FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
