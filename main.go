// Command rancher-ecr-credentials keeps registry credentials for private Amazon
// ECR registries fresh in Rancher and Kubernetes. main only starts the wiring,
// internal/app; see docs/architecture.md.
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/app"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/buildinfo"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/tlsroots"
)

// Stamped at build time by the Dockerfile:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
var version, commit, date string

func main() {
	// CA roots built into the binary, used only when the system has none: the
	// image is FROM scratch (no /etc/ssl).
	tlsroots.Install()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, stamp(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func stamp() buildinfo.Stamp { return buildinfo.Stamp{Version: version, Commit: commit, Date: date} }

// exitError carries a process exit code out of run; a nil err means every
// failure was logged already.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return (&app.ExitError{Code: e.code, Err: e.err}).Error() }
func (e *exitError) Unwrap() error { return e.err }

// run is main without the process: the daemon's command line, as tests call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := app.Run(ctx, stamp(), args, getenv, stdout, stderr)
	var ee *app.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.Code, err: ee.Err}
	}
	return err
}
