// Package norman writes ECR credentials into a Rancher 2.x project through the
// /v3 (norman) API: project-scoped dockerCredentials, and namespaced ones that
// already hold a managed host. See docs/rancher-api.md.
package norman

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/multihost"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// Store is a Rancher 2.x project's dockerCredentials. *rancherapi.Norman
// implements it.
type Store interface {
	ListDockerCredentials(ctx context.Context) ([]rancherapi.DockerCredential, error)
	CreateDockerCredential(ctx context.Context, name string, regs map[string]rancherapi.RegistryAuth) (rancherapi.DockerCredential, error)
	UpdateDockerCredential(ctx context.Context, id string, regs map[string]rancherapi.RegistryAuth) (rancherapi.DockerCredential, error)
	ListNamespacedDockerCredentials(ctx context.Context) ([]rancherapi.DockerCredential, error)
	UpdateNamespacedDockerCredential(ctx context.Context, id string, regs map[string]rancherapi.RegistryAuth) (rancherapi.DockerCredential, error)
}

var _ Store = (*rancherapi.Norman)(nil)

// Target is one Rancher 2.x project.
type Target struct {
	// Store is the project's /v3 API.
	Store Store
}

var _ refresher.Target = (*Target)(nil)

// Writing into Rancher 2.x: a dockerCredential's registries map is replaced
// whole on every PUT, and its passwords cannot be read back
// (docs/rancher-api.md#dockercredential-updates). So a credential is rewritten
// only when every host in it is one this process manages and each of their
// tokens is in hand; one that also holds other hosts is left alone, and the
// process writes its own, named registryhost.CredentialName(host).
// namespacedDockerCredentials that already hold a managed host are refreshed
// in place under the same rule, never created. multihost decides.

// Plan reads the project's dockerCredentials and namespaced ones and plans a
// write of every credential that is wholly this process's and holds a host of
// want.Tokens, and a new credential for each host that none holds.
func (tg *Target) Plan(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
	byKey, objects, err := tg.read(ctx, want.Log)
	if err != nil {
		return refresher.Plan{}, err
	}
	assigned, failures := multihost.Assign(want, objects, registryhost.CredentialName)
	p := refresher.Plan{Failures: failures}
	for _, a := range assigned {
		var cr *credential
		if a.Object != nil {
			cr = byKey[a.Object.Key]
		}
		if len(a.Kept) > 0 {
			// Its registries are replaced whole: without every password it
			// cannot be written now; the kept host's token is fetched again.
			err := fmt.Errorf("%s: %w (%s)", cr.object.Title, multihost.ErrKept, multihost.HostList(a.Kept))
			for _, t := range a.Tokens {
				p.Failures = append(p.Failures, refresher.Failure{Host: t.Host, Err: err})
			}
			continue
		}
		// Every host under the keys the credential already spells it with. A
		// host removed by hand, or another user name, shows that it holds
		// something else than this process last wrote there.
		regs := map[string]rancherapi.RegistryAuth{}
		stale := cr == nil || len(a.Dropped) > 0 // dropped hosts are never in regs
		for _, t := range a.Tokens {
			keys := []string{t.Host}
			if cr != nil {
				if k := cr.keys[t.Host]; len(k) > 0 {
					keys = k
				} else {
					stale = true
				}
				stale = stale || cr.users[t.Host] != t.Username
			}
			for _, k := range keys {
				regs[k] = rancherapi.RegistryAuth{Username: t.Username, Password: t.Password}
			}
		}
		w := refresher.Write{
			What: "docker credential", Object: "dockerCredential " + a.Name, Tokens: a.Tokens, Stale: stale,
			Detail: "keys=" + strings.Join(slices.Sorted(maps.Keys(regs)), ","),
			Fields: logrus.Fields{"credential": a.Name},
		}
		if len(a.Dropped) > 0 {
			w.Fields["taken_back"] = strings.Join(a.Dropped, ",")
			if len(a.Tokens) == 0 {
				w.Written = "docker credential emptied of this daemon's registries: the project's AWS identity is another, or refused"
			}
		}
		if cr == nil {
			name := a.Name
			w.Action = refresher.ResultCreated
			w.Apply = func(ctx context.Context) (refresher.Result, error) {
				if _, err := tg.Store.CreateDockerCredential(ctx, name, regs); err != nil {
					return refresher.ResultFailed, fmt.Errorf("create dockerCredential %s: %w", name, err)
				}
				return refresher.ResultCreated, nil
			}
		} else {
			id, title, update := cr.id, cr.object.Title, tg.Store.UpdateDockerCredential
			if cr.namespaced {
				w.Object = "namespacedDockerCredential " + id
				update = tg.Store.UpdateNamespacedDockerCredential
			}
			w.Action = refresher.ResultUpdated
			w.Apply = func(ctx context.Context) (refresher.Result, error) {
				if _, err := update(ctx, id, regs); err != nil {
					return refresher.ResultFailed, fmt.Errorf("update %s: %w", title, err)
				}
				return refresher.ResultUpdated, nil
			}
		}
		p.Writes = append(p.Writes, w)
	}
	return p, nil
}

// read lists the project's dockerCredentials and namespaced ones, as
// multihost sees them and by key. The namespaced ones are only refreshed:
// when they cannot be read, the project-scoped ones still are.
func (tg *Target) read(ctx context.Context, log logrus.FieldLogger) (map[string]*credential, []multihost.Object, error) {
	creds, err := tg.Store.ListDockerCredentials(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list dockerCredentials: %w", err)
	}
	nsCreds, err := tg.Store.ListNamespacedDockerCredentials(ctx)
	if err != nil {
		log.WithError(err).Warn("namespaced docker credentials unreadable; only project-scoped ones are refreshed")
	}
	byKey := map[string]*credential{}
	objects := make([]multihost.Object, 0, len(creds)+len(nsCreds))
	for i, c := range slices.Concat(creds, nsCreds) {
		cr := newCredential(c, i >= len(creds))
		byKey[cr.object.Key], objects = cr, append(objects, cr.object)
	}
	return byKey, objects, nil
}

// credential is a listed dockerCredential as multihost sees it, and the keys
// its registries map spells each host with.
type credential struct {
	object     multihost.Object
	id         string
	namespaced bool
	keys       map[string][]string // host → the keys that name it (https://h and h)
	users      map[string]string   // host → user name, as read back
}

func newCredential(c rancherapi.DockerCredential, namespaced bool) *credential {
	cr := &credential{id: c.ID, namespaced: namespaced, keys: map[string][]string{}, users: map[string]string{}}
	o := multihost.Object{Key: c.ID, Name: c.Name, Title: "dockerCredential " + c.Name, UpdateOnly: namespaced}
	if namespaced {
		o.Name = c.NamespaceID + "/" + c.Name
		o.Title = "namespacedDockerCredential " + c.ID
	}
	if c.Registries == nil {
		// Listed without its registries: what it holds is unknown, so it is
		// not known to be wholly ours, and a PUT would replace it whole.
		o.Refused = fmt.Errorf("%s exists but Rancher listed it with registries: null; it is not rewritten: check that the API key may read it, or delete it", o.Title)
	}
	for _, raw := range c.Hosts() {
		h, err := registryhost.NormalizeHost(raw)
		if err != nil {
			h = raw // no host at all: never a managed one
		}
		if len(cr.keys[h]) == 0 {
			o.Hosts = append(o.Hosts, h)
		}
		cr.keys[h] = append(cr.keys[h], raw)
		cr.users[h] = c.Registries[raw].Username
	}
	cr.object = o
	return cr
}
