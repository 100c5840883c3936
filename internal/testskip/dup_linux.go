package testskip

import (
	"os"

	"golang.org/x/sys/unix"
)

// shareStderr returns the go command's own standard error (pid's fd 2), as
// one more descriptor of the same open file: a line written through it moves
// the file offset the go command writes at, so a log file the go command's
// output goes to keeps both, in order (pidfd_getfd(2), Linux 5.6). It needs
// the right to trace pid, which a kernel may refuse (Yama ptrace_scope 1 or
// more): the caller falls back.
func shareStderr(pid int) (*os.File, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, 2, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "go command stderr"), nil
}
