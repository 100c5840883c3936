package rancher

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

// A Rancher 2.x project annotated rancher-ecr-credentials/role-arn gets the
// tokens of that role, never the daemon's own (README.md, "Security model").
// The annotation is read when the scopes are found: with RANCHER_PROJECTS=all
// from the listing, for named projects one read each, at every discovery
// (at start and at every scheduled run).

// annotations reads one project's annotations.
type annotations func(ctx context.Context, id string) (map[string]string, error)

// namedProjects is the discovery of the Rancher 2.x projects RANCHER_PROJECTS
// (or CATTLE_URL) names: the same scopes each time, each with the identity
// its annotation names. A project whose annotation cannot be read keeps the
// identity read last; one never read is not written at all (it may name a
// role: the daemon's own credential must never reach it), its scope failing
// with why.
type namedProjects struct {
	ids   []string
	scope scoper
	read  annotations
	log   logrus.FieldLogger

	mu    sync.Mutex
	known map[string]*namedProject
}

type namedProject struct {
	scope    refresher.Scope // made once: the refresher keeps a scope's first Target
	identity string
	read     bool // identity was read at least once
	target   *guarded
}

func (d *namedProjects) discover(ctx context.Context) ([]refresher.Scope, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.known == nil {
		d.known = map[string]*namedProject{}
	}
	scopes := make([]refresher.Scope, 0, len(d.ids))
	for _, id := range d.ids {
		k := d.known[id]
		if k == nil {
			// The refresher keeps a scope's first Target: this one, whose
			// refusal the reads below set and clear.
			sc := d.scope(id)
			k = &namedProject{scope: sc, target: &guarded{inner: sc.Target}}
			d.known[id] = k
		}
		a, err := d.read(ctx, id)
		switch {
		case err == nil:
			k.identity, k.read = tenantrole.IdentityOf(a), true
			k.target.fail(nil)
		case k.read:
			d.log.WithError(err).WithField("project", id).Warn("project annotations not read; its scope keeps the AWS identity read last")
		default:
			k.target.fail(fmt.Errorf("project %s: its annotation %s could not be read, so which AWS identity's credentials it may hold is not known; nothing is written there until it can be: %w",
				id, tenantrole.Annotation, err))
		}
		sc := k.scope
		sc.Identity, sc.Target = k.identity, k.target
		scopes = append(scopes, sc)
	}
	return scopes, nil
}

// guarded is a project's Target that fails, writing nothing, while its
// identity is not known.
type guarded struct {
	inner refresher.Target
	err   atomic.Pointer[error]
}

func (g *guarded) fail(err error) {
	if err == nil {
		g.err.Store(nil)
		return
	}
	g.err.Store(&err)
}

func (g *guarded) Plan(ctx context.Context, in refresher.Input) (refresher.Plan, error) {
	if err := g.err.Load(); err != nil {
		return refresher.Plan{}, *err
	}
	return g.inner.Plan(ctx, in)
}
