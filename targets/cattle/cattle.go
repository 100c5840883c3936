// Package cattle writes ECR credentials into a Rancher 1.x environment: the
// registry credentials of every registry whose server address matches an ECR
// host, updated in place (containers hold the credential id), never deleted and
// re-created. See docs/rancher-api.md.
package cattle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

const (
	// DefaultEmail is sent with every credential write: Rancher's /v1 API requires
	// a non-empty email and Docker ignores it for ECR.
	DefaultEmail = "not-really@required.anymore"

	registryDescription = "Amazon ECR registry; its credential is refreshed by rancher-ecr-credentials"
)

// ErrNoRegistry is matched by errors.Is when a scope has no registry for a host
// and AutoCreate is off.
var ErrNoRegistry = errors.New("no registry for this host")

// Store is a Rancher 1.x environment's registries and credentials.
// *rancherapi.Cattle implements it.
type Store interface {
	ListRegistries(ctx context.Context) ([]rancherapi.Registry, error)
	CreateRegistry(ctx context.Context, serverAddress, description string) (rancherapi.Registry, error)
	ListRegistryCredentials(ctx context.Context, registryID string) ([]rancherapi.RegistryCredential, error)
	CreateRegistryCredential(ctx context.Context, in rancherapi.CredentialInput) (rancherapi.RegistryCredential, error)
	UpdateRegistryCredential(ctx context.Context, id string, in rancherapi.CredentialInput) (rancherapi.RegistryCredential, error)
}

var _ Store = (*rancherapi.Cattle)(nil)

// Target is one Rancher 1.x environment.
type Target struct {
	// Store is the environment's API.
	Store Store
	// AutoCreate creates a registry for a host that has none.
	AutoCreate bool
	// Email is sent with every credential write; empty means DefaultEmail.
	Email string
}

var _ refresher.Target = (*Target)(nil)

// Plan reads the environment's registries (every page) and, for each token,
// the credentials of every registry whose address matches its host. It plans
// an update in place of every usable credential, a new credential for a
// registry with none, and, with AutoCreate, a new registry with its
// credential for a host that has no registry. Without AutoCreate such a host
// fails, naming the fix. Rancher has no dry run: the writes have no Check.
func (tg *Target) Plan(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
	regs, err := tg.Store.ListRegistries(ctx)
	if err != nil {
		return refresher.Plan{}, fmt.Errorf("list registries: %w", err)
	}
	// Only the hosts being written are indexed: a scope's thousands of other
	// registries cost their decoding and nothing more.
	byHost := make(map[string][]rancherapi.Registry, len(want.Tokens))
	for _, t := range want.Tokens {
		byHost[t.Host] = nil
	}
	var bad unparsable
	for i, reg := range regs {
		if i%1024 == 0 && ctx.Err() != nil {
			return refresher.Plan{}, ctx.Err()
		}
		if gone(reg.State) {
			continue
		}
		h, err := registryhost.NormalizeHost(reg.ServerAddress)
		if err != nil {
			bad.add(reg, err)
			continue
		}
		if matches, want := byHost[h]; want {
			byHost[h] = append(matches, reg)
		}
	}
	bad.log(want.Log)
	var p refresher.Plan
	for _, t := range want.Tokens {
		matches := byHost[t.Host]
		if len(matches) == 0 {
			if tg.AutoCreate {
				p.Writes = append(p.Writes, tg.createRegistry(t))
				continue
			}
			p.Failures = append(p.Failures, refresher.Failure{Host: t.Host, Err: refresher.Permanent(fmt.Errorf(
				"%w: add a registry with server address %s in this Rancher environment, or set AUTO_CREATE=true", ErrNoRegistry, t.Host))})
			continue
		}
		for _, reg := range matches {
			if reg.ServerAddress != t.Host {
				want.Log.WithFields(logrus.Fields{"registry": t.Host, "registry_id": reg.ID, "server_address": short(reg.ServerAddress, 256)}).
					Debug("registry address is not the bare host; Rancher 1.x pulls only use registries whose address is the bare host")
			}
			writes, err := tg.planRegistry(ctx, t, reg)
			if err != nil {
				p.Failures = append(p.Failures, refresher.Failure{Host: t.Host, Err: fmt.Errorf("registry %s: %w", reg.ID, err)})
				continue
			}
			p.Writes = append(p.Writes, writes...)
		}
	}
	return p, nil
}

// planRegistry plans the update in place of every usable credential of reg,
// or a new credential when it has none.
func (tg *Target) planRegistry(ctx context.Context, t refresher.Token, reg rancherapi.Registry) ([]refresher.Write, error) {
	creds, err := tg.Store.ListRegistryCredentials(ctx, reg.ID)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	usable := slices.DeleteFunc(creds, func(cr rancherapi.RegistryCredential) bool { return !usable(cr) })
	if len(usable) == 0 {
		return []refresher.Write{tg.createCredential(t, reg)}, nil
	}
	var out []refresher.Write
	for _, cr := range usable {
		out = append(out, tg.updateCredential(t, reg.ID, cr))
	}
	return out, nil
}

// updateCredential is the update in place of credential cr of registry
// regID. Rancher never returns the secret, so only a changed user name shows
// that the credential holds something else than this process last wrote.
func (tg *Target) updateCredential(t refresher.Token, regID string, cr rancherapi.RegistryCredential) refresher.Write {
	id := cr.ID
	return refresher.Write{
		What: "registry credential", Object: "credential " + id, Tokens: []refresher.Token{t}, Detail: tg.detail(),
		Stale: cr.PublicValue != t.Username, Action: refresher.ResultUpdated,
		Fields: logrus.Fields{"registry": t.Host, "registry_id": regID, "credential_id": id},
		Apply: func(ctx context.Context) (refresher.Result, error) {
			if _, err := tg.Store.UpdateRegistryCredential(ctx, id, tg.input(t, "")); err != nil {
				return refresher.ResultFailed, fmt.Errorf("registry %s: update credential %s: %w", regID, id, err)
			}
			return refresher.ResultUpdated, nil
		},
	}
}

// createCredential is a new credential for registry reg, which has none.
func (tg *Target) createCredential(t refresher.Token, reg rancherapi.Registry) refresher.Write {
	regID := reg.ID
	return refresher.Write{
		What: "registry credential", Object: "credential of registry " + regID, Tokens: []refresher.Token{t}, Detail: tg.detail(),
		Stale: true, Action: refresher.ResultCreated,
		Fields: logrus.Fields{"registry": t.Host, "registry_id": regID},
		Apply: func(ctx context.Context) (refresher.Result, error) {
			if _, err := tg.Store.CreateRegistryCredential(ctx, tg.input(t, regID)); err != nil {
				return refresher.ResultFailed, fmt.Errorf("registry %s: create credential: %w", regID, err)
			}
			return refresher.ResultCreated, nil
		},
	}
}

// createRegistry is a new registry for t's host, then its credential
// (AUTO_CREATE). When Rancher answers that the address is in use (a registry
// created meanwhile by someone else) the registries are read again and the
// ones that match are written instead: never a second registry.
func (tg *Target) createRegistry(t refresher.Token) refresher.Write {
	return refresher.Write{
		What: "registry and its credential", Object: "registry " + t.Host, Tokens: []refresher.Token{t}, Detail: tg.detail(),
		Stale: true, Action: refresher.ResultCreated,
		Fields: logrus.Fields{"registry": t.Host},
		Apply: func(ctx context.Context) (refresher.Result, error) {
			reg, err := tg.Store.CreateRegistry(ctx, t.Host, registryDescription)
			switch {
			case err == nil:
				return tg.createCredential(t, reg).Apply(ctx)
			case !rancherapi.HasCode(err, "ServerAddressUsed"):
				return refresher.ResultFailed, fmt.Errorf("create registry: %w", err)
			}
			found, lerr := tg.registriesFor(ctx, t.Host)
			switch {
			case lerr != nil:
				return refresher.ResultFailed, fmt.Errorf("create registry: address in use, then list registries: %w", lerr)
			case len(found) == 0:
				return refresher.ResultFailed, fmt.Errorf("create registry: Rancher says a registry with address %s exists but none is listed (being removed?): %w", t.Host, err)
			}
			return tg.writeInto(ctx, t, found)
		},
	}
}

// registriesFor lists the registries whose address matches host.
func (tg *Target) registriesFor(ctx context.Context, host string) ([]rancherapi.Registry, error) {
	regs, err := tg.Store.ListRegistries(ctx)
	if err != nil {
		return nil, err
	}
	var found []rancherapi.Registry
	for _, reg := range regs {
		if h, err := registryhost.NormalizeHost(reg.ServerAddress); err == nil && h == host && !gone(reg.State) {
			found = append(found, reg)
		}
	}
	return found, nil
}

// writeInto writes t into every usable credential of regs (or a new one per
// registry that has none), at once: the registries were found while applying.
func (tg *Target) writeInto(ctx context.Context, t refresher.Token, regs []rancherapi.Registry) (refresher.Result, error) {
	res := refresher.ResultCreated
	var errs []error
	for _, reg := range regs {
		writes, err := tg.planRegistry(ctx, t, reg)
		if err != nil {
			errs = append(errs, fmt.Errorf("registry %s: %w", reg.ID, err))
			continue
		}
		for _, w := range writes {
			r, err := w.Apply(ctx)
			if err != nil {
				errs = append(errs, err)
			} else if r == refresher.ResultUpdated {
				res = r
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return refresher.ResultFailed, err
	}
	return res, nil
}

func (tg *Target) email() string {
	if tg.Email == "" {
		return DefaultEmail
	}
	return tg.Email
}

// detail is what a credential holds besides the token.
func (tg *Target) detail() string { return "email=" + tg.email() }

func (tg *Target) input(t refresher.Token, registryID string) rancherapi.CredentialInput {
	return rancherapi.CredentialInput{RegistryID: registryID, PublicValue: t.Username, SecretValue: t.Password, Email: tg.email()}
}

// usable reports whether a credential is one Rancher uses for pulls: not
// being removed, not deactivated.
func usable(cr rancherapi.RegistryCredential) bool {
	return !gone(cr.State) && cr.State != "inactive" && cr.State != "deactivating"
}

// gone reports whether a Cattle state means the resource is being removed.
func gone(state string) bool {
	switch state {
	case "removing", "removed", "purging", "purged":
		return true
	}
	return false
}

// unparsable gathers the registries whose address is no host, for one
// warning per listing: a scope of thousands of them (or a hostile server)
// must not print thousands of lines.
type unparsable struct {
	count    int
	examples []string
}

// maxExamples is how many unparsable registries the warning names.
const maxExamples = 3

func (u *unparsable) add(reg rancherapi.Registry, err error) {
	u.count++
	if len(u.examples) < maxExamples {
		u.examples = append(u.examples, fmt.Sprintf("%s %s (%v)", short(reg.ID, 32), strconv.Quote(short(reg.ServerAddress, 64)), err))
	}
}

func (u *unparsable) log(log logrus.FieldLogger) {
	if u.count > 0 {
		log.WithFields(logrus.Fields{"count": u.count, "examples": strings.Join(u.examples, "; ")}).
			Warn("registries with an unparsable server address skipped")
	}
}

// short bounds a server-given string for a log line.
func short(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
