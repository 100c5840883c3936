package app

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/httpapi"
)

// healthcheckTimeout bounds the healthcheck subcommand's request.
const healthcheckTimeout = 3 * time.Second

// healthcheck GETs /healthz on the daemon's address (LISTEN_ADDRESS and
// LISTEN_PORT, or --listen-address and --listen-port after the subcommand):
// exit 0 when it answers 200, 1 otherwise — never 2, which Docker reserves.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fail := func(err error) error { return &ExitError{Code: 1, Err: fmt.Errorf("healthcheck: %w", err)} }
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := fs.String("listen-port", cmp.Or(getenv("LISTEN_PORT"), strconv.Itoa(DefaultListenPort)), "port of the daemon")
	addr := fs.String("listen-address", getenv("LISTEN_ADDRESS"), "address the daemon binds")
	if err := fs.Parse(args); err != nil {
		return fail(err)
	}
	u, err := httpapi.HealthcheckURL(*addr, *port)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("%s", resp.Status))
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
