// Package norman writes ECR credentials into a Rancher 2.x project through the
// /v3 (norman) API: project-scoped dockerCredentials, and namespaced ones that
// already hold a managed host. See docs/rancher-api.md.
package norman

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
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

// Writing into Rancher 2.x: a dockerCredential's registries map is
// replaced whole on every PUT, and its passwords cannot be read back. So a
// credential is rewritten only when every host in it is one this process
// manages (it can supply every password); one that also holds other hosts is
// left alone, and the process writes its own, named ecr-<account>-<region>.
// namespacedDockerCredentials that already hold a managed host are refreshed in
// place under the same rule, never created.

// dockerRun is one project's dockerCredentials during one run.
type dockerRun struct {
	store  Store
	rec    *refresher.Recorder
	tokens map[string]refresher.Token               // every token fetched this run, by host
	ours   map[string][]rancherapi.DockerCredential // host → project-scoped credentials wholly ours that hold it
	nsOurs map[string][]rancherapi.DockerCredential // host → namespaced credentials wholly ours that hold it
	shared map[string][]string                      // host → names of credentials that also hold foreign hosts
	byName map[string]rancherapi.DockerCredential
	done   map[string]error // credential id → result, one write per credential per run
}

// Sync writes the due tokens into the project.
func (tg *Target) Sync(ctx context.Context, due, all []refresher.Token, rec *refresher.Recorder) error {
	creds, err := tg.Store.ListDockerCredentials(ctx)
	if err != nil {
		return fmt.Errorf("list dockerCredentials: %w", err)
	}
	d := &dockerRun{store: tg.Store, rec: rec, tokens: map[string]refresher.Token{},
		ours: map[string][]rancherapi.DockerCredential{}, shared: map[string][]string{},
		byName: map[string]rancherapi.DockerCredential{}, done: map[string]error{}}
	for _, t := range all {
		d.tokens[t.Host] = t
	}
	d.nsOurs = map[string][]rancherapi.DockerCredential{}
	nsCreds, err := tg.Store.ListNamespacedDockerCredentials(ctx)
	if err != nil {
		rec.Log().WithError(err).Warn("namespaced docker credentials unreadable; only project-scoped ones are refreshed")
	}
	for _, cred := range creds {
		d.byName[cred.Name] = cred
		d.classify(cred, d.ours)
	}
	for _, cred := range nsCreds {
		d.classify(cred, d.nsOurs)
	}

	for _, t := range due {
		rec.Done(t, d.syncHost(ctx, t))
	}
	return nil
}

// classify files a credential under each managed host it holds: in ours when
// every host in it is managed, else in shared (never rewritten). One listed
// with registries: null holds nothing known, so it is never ours.
func (d *dockerRun) classify(cred rancherapi.DockerCredential, ours map[string][]rancherapi.DockerCredential) {
	hosts := normalizedHosts(cred)
	mine := cred.Registries != nil && !slices.ContainsFunc(hosts, func(h string) bool { return !d.rec.Managed(h) })
	name := cred.Name
	if cred.NamespaceID != "" {
		name = cred.NamespaceID + "/" + cred.Name
	}
	for _, h := range hosts {
		switch {
		case !d.rec.Managed(h):
		case mine:
			ours[h] = append(ours[h], cred)
		default:
			d.shared[h] = append(d.shared[h], name)
		}
	}
}

// normalizedHosts are a credential's registry hosts as NormalizeHost gives
// them; a key that is no host at all stays as it is (and so is foreign).
func normalizedHosts(d rancherapi.DockerCredential) []string {
	var out []string
	for _, raw := range d.Hosts() {
		h, err := refresher.NormalizeHost(raw)
		if err != nil {
			h = raw
		}
		out = append(out, h)
	}
	return out
}

// syncHost writes one token into every credential of the project that is
// wholly ours and holds its host, or into a new credential of our own.
func (d *dockerRun) syncHost(ctx context.Context, t refresher.Token) error {
	log := d.rec.Log().WithField("registry", t.Host)
	if names := d.shared[t.Host]; len(names) > 0 {
		log.WithField("credentials", strings.Join(names, ",")).
			Info("docker credential also holds hosts this process does not manage; left untouched (its other passwords cannot be read back)")
	}
	var errs []error
	targets := d.ours[t.Host]
	if len(targets) == 0 {
		name := CredentialName(t)
		existing, taken := d.byName[name]
		switch {
		case !taken:
			if err := d.create(ctx, t, name); err != nil {
				errs = append(errs, err)
			}
		case existing.Registries == nil:
			// Listed without its registries: what it holds is unknown, so it is
			// not known to be wholly ours, and a PUT would replace it whole.
			errs = append(errs, refresher.Permanent(fmt.Errorf("dockerCredential %s exists but Rancher listed it with registries: null; it is not rewritten: check that the API key may read it, or delete it", name)))
		case slices.ContainsFunc(normalizedHosts(existing), func(h string) bool { return !d.rec.Managed(h) }):
			errs = append(errs, fmt.Errorf("dockerCredential %s exists and holds hosts this process does not manage (%s); it is not rewritten: remove them from it, or delete it",
				name, hostList(existing.Hosts())))
		default: // ours by name, its host removed by hand: put the host back
			targets = []rancherapi.DockerCredential{existing}
		}
	}
	for _, cred := range append(targets, d.nsOurs[t.Host]...) {
		err, seen := d.done[cred.ID]
		if !seen {
			err = d.write(ctx, cred, t)
			d.done[cred.ID] = err
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *dockerRun) create(ctx context.Context, t refresher.Token, name string) error {
	log := d.rec.Log().WithFields(logrus.Fields{"registry": t.Host, "credential": name})
	if d.rec.DryRun() {
		log.Info("dry run: would create docker credential")
		return nil
	}
	regs := map[string]rancherapi.RegistryAuth{t.Host: {Username: t.Username, Password: t.Password}}
	cred, err := d.store.CreateDockerCredential(ctx, name, regs)
	if err != nil {
		return fmt.Errorf("create dockerCredential %s: %w", name, err)
	}
	d.byName[name] = cred
	d.rec.Written(cred.ID, regsHash(regs), "created", t)
	log.WithField("expires_at", t.ExpiresAt.UTC().Format(time.RFC3339)).Info("docker credential created")
	return nil
}

// writeDockerCred rewrites a credential that is wholly ours, every host in it
// with its fresh password, plus t's host.
func (d *dockerRun) write(ctx context.Context, cred rancherapi.DockerCredential, t refresher.Token) error {
	log := d.rec.Log().WithFields(logrus.Fields{"registry": t.Host, "credential": cred.Name})
	regs := map[string]rancherapi.RegistryAuth{t.Host: {Username: t.Username, Password: t.Password}}
	var others []refresher.Token // the other hosts in it get fresh tokens too
	for _, raw := range cred.Hosts() {
		h, _ := refresher.NormalizeHost(raw)
		tok, ok := d.tokens[h]
		if !ok {
			return fmt.Errorf("dockerCredential %s also holds %s, whose token could not be fetched this run; it is rewritten whole once both are", cred.Name, h)
		}
		delete(regs, h)
		regs[raw] = rancherapi.RegistryAuth{Username: tok.Username, Password: tok.Password}
		if h != t.Host {
			others = append(others, tok)
		}
	}
	h := regsHash(regs)
	if d.rec.Unchanged(cred.ID, h, t) {
		log.Debug("docker credential unchanged")
		return nil
	}
	if d.rec.DryRun() {
		log.Info("dry run: would update docker credential")
		return nil
	}
	update := d.store.UpdateDockerCredential
	if cred.NamespaceID != "" {
		update = d.store.UpdateNamespacedDockerCredential
	}
	if _, err := update(ctx, cred.ID, regs); err != nil {
		return fmt.Errorf("update dockerCredential %s: %w", cred.Name, err)
	}
	d.rec.Written(cred.ID, h, "updated", t, others...)
	log.WithField("expires_at", t.ExpiresAt.UTC().Format(time.RFC3339)).Info("docker credential updated")
	return nil
}

// hostList names at most a few hosts of a server-given list, each bounded, for
// an error message.
func hostList(hosts []string) string {
	const most = 5
	var out []string
	for i, h := range hosts {
		if i == most {
			out = append(out, fmt.Sprintf("and %d more", len(hosts)-most))
			break
		}
		if len(h) > 80 {
			h = strings.ToValidUTF8(h[:80], "") + "…"
		}
		out = append(out, strconv.Quote(h))
	}
	return strings.Join(out, ",")
}

// regsHash identifies what a registries map holds, passwords included.
func regsHash(regs map[string]rancherapi.RegistryAuth) refresher.Content {
	keys := make([]string, 0, len(regs))
	for k := range regs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fields := make([]string, 0, 3*len(keys))
	for _, k := range keys {
		fields = append(fields, k, regs[k].Username, regs[k].Password)
	}
	return refresher.Hash(fields...)
}

// CredentialName is the name of the credential this process creates for a
// host: ecr-<account>-<region>, or derived from ECR_PROXY_HOST. It is a DNS-1123
// label, as Kubernetes secret names must be (Rancher stores a dockerCredential
// as a Secret of that name).
func CredentialName(t refresher.Token) string {
	raw := "ecr-" + t.RegistryID + "-" + t.Region
	if t.Host != t.ECRHost {
		raw = "ecr-" + t.Host
	}
	var b strings.Builder
	for _, ch := range strings.ToLower(raw) {
		if ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' {
			b.WriteRune(ch)
		} else {
			b.WriteRune('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}
