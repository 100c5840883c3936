// Package cattle writes ECR credentials into a Rancher 1.x environment: the
// registry credentials of every registry whose server address matches an ECR
// host, updated in place (containers hold the credential id), never deleted and
// re-created. See docs/rancher-api.md.
package cattle

import (
	"context"
	"errors"
	"fmt"
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
	byHost, err := tg.registries(ctx, want)
	if err != nil {
		return refresher.Plan{}, err
	}
	var p refresher.Plan
	var changes []change
	var missing []string
	for _, t := range want.Tokens {
		regs := byHost[t.Host]
		if len(regs) == 0 {
			if tg.AutoCreate {
				changes = append(changes, change{token: t})
			} else {
				missing = append(missing, t.Host)
			}
			continue
		}
		for _, reg := range regs {
			if reg.ServerAddress != t.Host {
				want.Log.WithFields(logrus.Fields{"registry": t.Host, "registry_id": reg.ID, "server_address": short(reg.ServerAddress, 256)}).
					Debug("registry address is not the bare host; Rancher 1.x pulls only use registries whose address is the bare host")
			}
			if reg.err != nil {
				p.Failures = append(p.Failures, refresher.Failure{Host: t.Host, Err: fmt.Errorf("registry %s: %w", reg.ID, reg.err)})
				continue
			}
			for _, sl := range reg.slots {
				changes = append(changes, change{token: t, slot: sl})
			}
		}
	}
	for _, c := range changes {
		w := c.describe(tg.detail())
		w.Apply = func(ctx context.Context) (refresher.Result, error) { return tg.put(ctx, c) }
		p.Writes = append(p.Writes, w)
	}
	for _, h := range missing {
		p.Failures = append(p.Failures, refresher.Failure{Host: h, Err: refresher.Permanent(fmt.Errorf(
			"%w: add a registry with server address %s in this Rancher environment, or set AUTO_CREATE=true", ErrNoRegistry, h))})
	}
	return p, nil
}

// registry is a listed registry whose address matches a token's host, and
// where in it the token goes (or why that could not be read).
type registry struct {
	rancherapi.Registry
	slots []slot
	err   error
}

// registries reads the environment's registries that are not being removed
// and whose address matches the host of a token, by host, each with its
// credentials. Only the hosts being written are indexed: a scope's thousands
// of other registries cost their decoding and nothing more.
func (tg *Target) registries(ctx context.Context, want refresher.Input) (map[string][]registry, error) {
	regs, err := tg.Store.ListRegistries(ctx)
	if err != nil {
		return nil, fmt.Errorf("list registries: %w", err)
	}
	byHost := make(map[string][]registry, len(want.Tokens))
	for _, t := range want.Tokens {
		byHost[t.Host] = nil
	}
	var bad unparsable
	for i, reg := range regs {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
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
			slots, err := tg.slots(ctx, reg.ID)
			byHost[h] = append(matches, registry{Registry: reg, slots: slots, err: err})
		}
	}
	bad.log(want.Log)
	return byHost, nil
}

// slot is where a token goes in a registry: a usable credential, or a new
// one when the registry has none (credential ""). A zero slot is a registry
// still to be created (AutoCreate).
type slot struct {
	registry   string
	credential string
	// user is the credential's user name as read back: Rancher never
	// returns the secret, so only a changed user name shows that the
	// credential holds something else than this process last wrote.
	user string
}

// slots lists the credentials of registry regID and returns where a token
// goes: every usable credential, or a new one when it has none.
func (tg *Target) slots(ctx context.Context, regID string) ([]slot, error) {
	creds, err := tg.Store.ListRegistryCredentials(ctx, regID)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	var out []slot
	for _, cr := range creds {
		if usable(cr) {
			out = append(out, slot{registry: regID, credential: cr.ID, user: cr.PublicValue})
		}
	}
	if len(out) == 0 {
		out = append(out, slot{registry: regID})
	}
	return out, nil
}

// change is one planned write of a token, into a slot.
type change struct {
	token refresher.Token
	slot
}

// describe is the write of c as the refresher logs and remembers it; the
// caller adds Apply.
func (c change) describe(detail string) refresher.Write {
	t := c.token
	w := refresher.Write{Tokens: []refresher.Token{t}, Detail: detail, Stale: true, Action: refresher.ResultCreated}
	switch {
	case c.registry == "":
		w.What, w.Object, w.Fields = "registry and its credential", "registry "+t.Host, logrus.Fields{"registry": t.Host}
	case c.credential == "":
		w.What, w.Object = "registry credential", "credential of registry "+c.registry
		w.Fields = logrus.Fields{"registry": t.Host, "registry_id": c.registry}
	default:
		w.What, w.Object = "registry credential", "credential "+c.credential
		w.Fields = logrus.Fields{"registry": t.Host, "registry_id": c.registry, "credential_id": c.credential}
		w.Stale, w.Action = c.user != t.Username, refresher.ResultUpdated
	}
	return w
}

// put carries c out. A registry is created first when c has none; when
// Rancher answers that the address is in use (a registry created meanwhile by
// someone else) the registries are read again and the token goes into the
// ones that match instead: never a second registry. Credentials are updated
// in place (containers hold their id), never deleted and re-created.
func (tg *Target) put(ctx context.Context, c change) (refresher.Result, error) {
	in := tg.input(c.token)
	host := c.token.Host
	slots := []slot{c.slot}
	var errs []error
	if c.registry == "" {
		reg, err := tg.Store.CreateRegistry(ctx, host, registryDescription)
		switch {
		case err == nil:
			slots = []slot{{registry: reg.ID}}
		case !rancherapi.HasCode(err, "ServerAddressUsed"):
			return refresher.ResultFailed, fmt.Errorf("create registry: %w", err)
		default: // the registries are read again: the token goes into those of host
			regs, lerr := tg.Store.ListRegistries(ctx)
			if lerr != nil {
				return refresher.ResultFailed, fmt.Errorf("create registry: address in use, then list registries: %w", lerr)
			}
			slots = nil
			matched := 0
			for _, reg := range regs {
				if h, herr := registryhost.NormalizeHost(reg.ServerAddress); herr != nil || h != host || gone(reg.State) {
					continue
				}
				matched++
				found, serr := tg.slots(ctx, reg.ID)
				if serr != nil { // the other registries are still written
					errs = append(errs, fmt.Errorf("create registry: address in use, then registry %s: %w", reg.ID, serr))
					continue
				}
				slots = append(slots, found...)
			}
			if matched == 0 {
				return refresher.ResultFailed, fmt.Errorf("create registry: Rancher says a registry with address %s exists but none is listed (being removed?): %w", host, err)
			}
		}
	}
	res := refresher.ResultCreated
	for _, sl := range slots {
		if sl.credential == "" {
			in.RegistryID = sl.registry
			if _, err := tg.Store.CreateRegistryCredential(ctx, in); err != nil {
				errs = append(errs, fmt.Errorf("registry %s: create credential: %w", sl.registry, err))
			}
			continue
		}
		in.RegistryID = ""
		if _, err := tg.Store.UpdateRegistryCredential(ctx, sl.credential, in); err != nil {
			errs = append(errs, fmt.Errorf("registry %s: update credential %s: %w", sl.registry, sl.credential, err))
			continue
		}
		res = refresher.ResultUpdated
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

func (tg *Target) input(t refresher.Token) rancherapi.CredentialInput {
	return rancherapi.CredentialInput{PublicValue: t.Username, SecretValue: t.Password, Email: tg.email()}
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
