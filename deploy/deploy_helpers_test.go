package deploy_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/app"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/buildinfo"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

// What the deployment tests (chart_test.go, chart_rbac_test.go, deploy_test.go,
// rancher_catalog_test.go) take from the daemon's code, under the names they
// use; internal/app and internal/apptest hold the real thing.

const (
	e2eAccount             = apptest.Account
	DefaultShutdownTimeout = app.DefaultShutdownTimeout
)

// setting is one variable the daemon reads.
type setting struct {
	env   string
	noEnv bool // a flag only
}

func settings() []setting {
	var out []setting
	for _, s := range app.Settings() {
		out = append(out, setting{env: s.Env, noEnv: s.FlagOnly})
	}
	return out
}

// config is what the deployment tests read of a checked configuration.
type config struct {
	ShutdownTimeout time.Duration
	ListenPort      int
}

// ParseConfig checks args and getenv as the daemon does at start.
func ParseConfig(args []string, getenv func(string) string) (config, error) {
	c, err := app.Check(args, getenv)
	return config{ShutdownTimeout: c.ShutdownTimeout, ListenPort: c.ListenPort}, err
}

func envOf(m map[string]string) func(string) string           { return apptest.EnvOf(m) }
func with(m map[string]string, k, v string) map[string]string { return apptest.With(m, k, v) }
func noSecrets(t *testing.T, out string, secrets ...string) {
	t.Helper()
	apptest.NoSecrets(t, out, secrets...)
}

// world is apptest.World under the names the deployment tests use.
type world struct {
	ecr     *ecrtest.Server
	rancher *ranchertest.Server
	env     map[string]string
}

func newWorld(t *testing.T) *world {
	w := apptest.NewWorld(t)
	return &world{ecr: w.ECR, rancher: w.Rancher, env: w.Env}
}

func (w *world) run(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = app.Run(ctx, buildinfo.Stamp{}, args, envOf(w.env), &o, &e)
	return o.String(), e.String(), err
}
