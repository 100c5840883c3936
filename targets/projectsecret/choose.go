package projectsecret

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// RANCHER_SECRET_API values.
const (
	ModeAuto       = "auto"
	ModeV3         = "v3"
	ModeKubernetes = "kubernetes"
)

// Choice is how credentials reach Rancher 2.x projects, and why.
type Choice struct {
	Mode    string // ModeV3 or ModeKubernetes
	Version string // the server version read, "" when not read
	Reason  string
}

// Choose picks the way for a server version (raw, as /v3/settings/server-version
// gives it) under mode (RANCHER_SECRET_API). Rancher 2.12 replaced the
// controllers that copied /v3 dockerCredentials into a project's namespaces:
// from then on only Secrets labelled management.cattle.io/project-scoped-secret
// are copied at once (https://github.com/rancher/rancher/issues/50093), so
// 2.12 and later get Secrets. A development build (dev, master-head) is newer
// than every release. A version that cannot be read keeps /v3, which every
// Rancher 2.x serves.
func Choose(mode, raw string) Choice {
	switch mode {
	case ModeV3:
		return Choice{Mode: ModeV3, Version: raw, Reason: "RANCHER_SECRET_API=v3"}
	case ModeKubernetes:
		return Choice{Mode: ModeKubernetes, Version: raw, Reason: "RANCHER_SECRET_API=kubernetes"}
	}
	v, err := rancherapi.ParseServerVersion(raw)
	switch {
	case err != nil:
		return Choice{Mode: ModeV3, Version: raw, Reason: fmt.Sprintf("server version %q is not a release version: /v3 works on every Rancher 2.x; set RANCHER_SECRET_API=kubernetes on Rancher 2.12 or later", raw)}
	case v.Dev && v.Major == 0:
		return Choice{Mode: ModeKubernetes, Version: raw, Reason: fmt.Sprintf("server version %s is a development build, taken as the newest Rancher (2.12 or later copies only labelled Secrets into a project's namespaces)", raw)}
	case v.AtLeast(2, 12):
		return Choice{Mode: ModeKubernetes, Version: raw, Reason: fmt.Sprintf("Rancher %s is 2.12 or later, which copies only labelled Secrets into a project's namespaces at once", raw)}
	}
	return Choice{Mode: ModeV3, Version: raw, Reason: fmt.Sprintf("Rancher %s is older than 2.12, whose /v3 dockerCredentials are copied into a project's namespaces at once", raw)}
}

// Chooser decides once, at the first run that can read Rancher's version, how
// every project is written, and says so in one log line.
type Chooser struct {
	Mode string // RANCHER_SECRET_API
	// Version reads the server version (Client.GetServerVersion).
	Version func(ctx context.Context) (string, error)
	Log     logrus.FieldLogger

	mu     sync.Mutex
	choice *Choice
}

// Choose returns the choice, reading the server version the first time in auto
// mode. A failure to read it is returned (and retried at the next run), except
// a 404: a Rancher without the setting is older than every version that has
// it, so /v3.
func (c *Chooser) Choose(ctx context.Context) (Choice, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.choice != nil {
		return *c.choice, nil
	}
	var raw string
	if c.Mode == ModeAuto || c.Mode == "" {
		var err error
		raw, err = c.Version(ctx)
		switch {
		case errors.Is(err, rancherapi.ErrNotFound):
			raw = "(no server-version setting)"
		case err != nil:
			return Choice{}, fmt.Errorf("read Rancher's version to choose between /v3 and Kubernetes Secrets (RANCHER_SECRET_API=auto): %w", err)
		}
	}
	ch := Choose(c.Mode, raw)
	c.choice = &ch
	how := "/v3 dockerCredentials"
	if ch.Mode == ModeKubernetes {
		how = "project-scoped Secrets through the Kubernetes API"
	}
	c.Log.WithFields(logrus.Fields{"rancher_secret_api": ch.Mode, "server_version": ch.Version, "reason": ch.Reason}).
		Info("Rancher 2.x projects are written as " + how)
	return ch, nil
}

// Target returns a Target that writes through v3 or kube as the chooser decides.
func (c *Chooser) Target(v3, kube refresher.Target) refresher.Target {
	return &chosen{c: c, v3: v3, kube: kube}
}

type chosen struct {
	c        *Chooser
	v3, kube refresher.Target
}

// Plan plans through the way the chooser picked; a failure to pick fails the
// scope (and is retried at its next pass).
func (t *chosen) Plan(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
	ch, err := t.c.Choose(ctx)
	if err != nil {
		return refresher.Plan{}, err
	}
	if ch.Mode == ModeKubernetes {
		return t.kube.Plan(ctx, want)
	}
	return t.v3.Plan(ctx, want)
}
