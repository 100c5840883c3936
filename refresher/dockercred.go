package refresher

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
)

// Writing into Rancher 2.x (spec §2.4): a dockerCredential's registries map is
// replaced whole on every PUT, and its passwords cannot be read back. So a
// credential is rewritten only when every host in it is one this process
// manages (it can supply every password); one that also holds other hosts is
// left alone, and the process writes its own, named ecr-<account>-<region>.
// namespacedDockerCredentials that already hold a managed host are refreshed in
// place under the same rule, never created.

// dockerRun is one scope's dockerCredentials during one run.
type dockerRun struct {
	sc      Scope
	managed map[string]bool                          // every host this process manages
	tokens  map[string]Token                         // every token fetched this run, by host
	ours    map[string][]rancherapi.DockerCredential // host → project-scoped credentials wholly ours that hold it
	nsOurs  map[string][]rancherapi.DockerCredential // host → namespaced credentials wholly ours that hold it
	shared  map[string][]string                      // host → names of credentials that also hold foreign hosts
	byName  map[string]rancherapi.DockerCredential
	done    map[string]error // credential id → result, one write per credential per run
}

// syncDockerScope writes the due tokens into one Rancher 2.x project.
func (r *Refresher) syncDockerScope(ctx context.Context, sc Scope, due, all []Token, c *counts) []error {
	if len(due) == 0 {
		return nil
	}
	log := r.Logger.WithField("scope", sc.Name)
	creds, err := sc.Docker.ListDockerCredentials(ctx)
	if err != nil {
		return r.failScope(sc, due, fmt.Errorf("scope %s: list dockerCredentials: %w", sc.Name, err))
	}
	d := &dockerRun{sc: sc, managed: r.managedHosts(all), tokens: map[string]Token{},
		ours: map[string][]rancherapi.DockerCredential{}, shared: map[string][]string{},
		byName: map[string]rancherapi.DockerCredential{}, done: map[string]error{}}
	for _, t := range all {
		d.tokens[t.Host] = t
	}
	d.nsOurs = map[string][]rancherapi.DockerCredential{}
	nsCreds, err := sc.Docker.ListNamespacedDockerCredentials(ctx)
	if err != nil {
		log.WithError(err).Warn("namespaced docker credentials unreadable; only project-scoped ones are refreshed")
	}
	for _, cred := range creds {
		d.byName[cred.Name] = cred
		d.classify(cred, d.ours)
	}
	for _, cred := range nsCreds {
		d.classify(cred, d.nsOurs)
	}

	var errs []error
	for _, t := range due {
		if err := r.finishPair(sc, t, r.syncDockerHost(ctx, d, t, c)); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// classify files a credential under each managed host it holds: in ours when
// every host in it is managed, else in shared (never rewritten).
func (d *dockerRun) classify(cred rancherapi.DockerCredential, ours map[string][]rancherapi.DockerCredential) {
	hosts := normalizedHosts(cred)
	mine := !slices.ContainsFunc(hosts, func(h string) bool { return !d.managed[h] })
	name := cred.Name
	if cred.NamespaceID != "" {
		name = cred.NamespaceID + "/" + cred.Name
	}
	for _, h := range hosts {
		switch {
		case !d.managed[h]:
		case mine:
			ours[h] = append(ours[h], cred)
		default:
			d.shared[h] = append(d.shared[h], name)
		}
	}
}

// managedHosts is every host this process writes: this run's tokens and every
// pair it has known.
func (r *Refresher) managedHosts(tokens []Token) map[string]bool {
	m := map[string]bool{}
	for _, t := range tokens {
		m[t.Host] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.pairs {
		m[k.host] = true
	}
	return m
}

// normalizedHosts are a credential's registry hosts as NormalizeHost gives
// them; a key that is no host at all stays as it is (and so is foreign).
func normalizedHosts(d rancherapi.DockerCredential) []string {
	var out []string
	for _, raw := range d.Hosts() {
		h, err := NormalizeHost(raw)
		if err != nil {
			h = raw
		}
		out = append(out, h)
	}
	return out
}

// syncDockerHost writes one token into every credential of the project that is
// wholly ours and holds its host, or into a new credential of our own.
func (r *Refresher) syncDockerHost(ctx context.Context, d *dockerRun, t Token, c *counts) error {
	log := r.Logger.WithFields(logrus.Fields{"scope": d.sc.Name, "registry": t.Host})
	if names := d.shared[t.Host]; len(names) > 0 {
		log.WithField("credentials", strings.Join(names, ",")).
			Info("docker credential also holds hosts this process does not manage; left untouched (its other passwords cannot be read back)")
	}
	var errs []error
	targets := d.ours[t.Host]
	if len(targets) == 0 {
		name := dockerCredentialName(t)
		existing, taken := d.byName[name]
		switch {
		case !taken:
			if err := r.createDockerCred(ctx, d, t, name, c); err != nil {
				errs = append(errs, err)
			}
		case slices.ContainsFunc(normalizedHosts(existing), func(h string) bool { return !d.managed[h] }):
			errs = append(errs, fmt.Errorf("dockerCredential %s exists and holds hosts this process does not manage (%s); it is not rewritten: remove them from it, or delete it",
				name, strings.Join(existing.Hosts(), ",")))
		default: // ours by name, its host removed by hand: put the host back
			targets = []rancherapi.DockerCredential{existing}
		}
	}
	for _, cred := range append(targets, d.nsOurs[t.Host]...) {
		err, seen := d.done[cred.ID]
		if !seen {
			err = r.writeDockerCred(ctx, d, cred, t, c)
			d.done[cred.ID] = err
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Refresher) createDockerCred(ctx context.Context, d *dockerRun, t Token, name string, c *counts) error {
	log := r.Logger.WithFields(logrus.Fields{"scope": d.sc.Name, "registry": t.Host, "credential": name})
	if r.DryRun {
		log.Info("dry run: would create docker credential")
		return nil
	}
	regs := map[string]rancherapi.RegistryAuth{t.Host: {Username: t.Username, Password: t.Password}}
	cred, err := d.sc.Docker.CreateDockerCredential(ctx, name, regs)
	if err != nil {
		return fmt.Errorf("create dockerCredential %s: %w", name, err)
	}
	d.byName[name] = cred
	r.booked(d.sc.Name, cred.ID, regsHash(regs), t, "created", c)
	log.WithField("expires_at", t.ExpiresAt.UTC().Format(time.RFC3339)).Info("docker credential created")
	return nil
}

// writeDockerCred rewrites a credential that is wholly ours, every host in it
// with its fresh password, plus t's host.
func (r *Refresher) writeDockerCred(ctx context.Context, d *dockerRun, cred rancherapi.DockerCredential, t Token, c *counts) error {
	log := r.Logger.WithFields(logrus.Fields{"scope": d.sc.Name, "registry": t.Host, "credential": cred.Name})
	regs := map[string]rancherapi.RegistryAuth{t.Host: {Username: t.Username, Password: t.Password}}
	for _, raw := range cred.Hosts() {
		h, _ := NormalizeHost(raw)
		tok, ok := d.tokens[h]
		if !ok {
			return fmt.Errorf("dockerCredential %s also holds %s, whose token could not be fetched this run; it is rewritten whole once both are", cred.Name, h)
		}
		delete(regs, h)
		regs[raw] = rancherapi.RegistryAuth{Username: tok.Username, Password: tok.Password}
	}
	h := regsHash(regs)
	if r.wrote(d.sc.Name, cred.ID, h) {
		r.unchanged(d.sc.Name, t, c)
		log.Debug("docker credential unchanged")
		return nil
	}
	if r.DryRun {
		log.Info("dry run: would update docker credential")
		return nil
	}
	update := d.sc.Docker.UpdateDockerCredential
	if cred.NamespaceID != "" {
		update = d.sc.Docker.UpdateNamespacedDockerCredential
	}
	if _, err := update(ctx, cred.ID, regs); err != nil {
		return fmt.Errorf("update dockerCredential %s: %w", cred.Name, err)
	}
	r.booked(d.sc.Name, cred.ID, h, t, "updated", c)
	for _, raw := range cred.Hosts() { // the other hosts in it got fresh tokens too
		if h, _ := NormalizeHost(raw); h != t.Host {
			r.Metrics.written(h, d.tokens[h].ExpiresAt)
		}
	}
	log.WithField("expires_at", t.ExpiresAt.UTC().Format(time.RFC3339)).Info("docker credential updated")
	return nil
}

// regsHash identifies what a registries map holds, passwords included.
func regsHash(regs map[string]rancherapi.RegistryAuth) [sha256.Size]byte {
	keys := make([]string, 0, len(regs))
	for k := range regs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s\x00%s\x00%s\x00", k, regs[k].Username, regs[k].Password)
	}
	return sha256.Sum256([]byte(b.String()))
}

// dockerCredentialName is the name of the credential this process creates for
// a host: ecr-<account>-<region>, or derived from ECR_PROXY_HOST. It is a
// DNS-1123 label, as Kubernetes secret names must be.
func dockerCredentialName(t Token) string {
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
