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
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
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

// Sync writes each due token into every credential of every registry whose
// address matches its host, creating the registry first when none does and
// AutoCreate is on.
func (tg *Target) Sync(ctx context.Context, due, _ []refresher.Token, rec *refresher.Recorder) error {
	regs, err := tg.Store.ListRegistries(ctx)
	if err != nil {
		return fmt.Errorf("list registries: %w", err)
	}
	// Only the hosts being written are indexed: a scope's thousands of other
	// registries cost their decoding and nothing more.
	byHost := make(map[string][]rancherapi.Registry, len(due))
	for _, t := range due {
		byHost[t.Host] = nil
	}
	var bad unparsable
	for i, reg := range regs {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if gone(reg.State) {
			continue
		}
		h, err := refresher.NormalizeHost(reg.ServerAddress)
		if err != nil {
			bad.add(reg, err)
			continue
		}
		if matches, want := byHost[h]; want {
			byHost[h] = append(matches, reg)
		}
	}
	bad.log(rec.Log())
	for _, t := range due {
		rec.Done(t, tg.syncHost(ctx, rec, t, byHost[t.Host]))
	}
	return nil
}

// syncHost writes one token into every registry that matches its host,
// creating the registry first when none does and AutoCreate is on.
func (tg *Target) syncHost(ctx context.Context, rec *refresher.Recorder, t refresher.Token, matches []rancherapi.Registry) error {
	log := rec.Log().WithField("registry", t.Host)
	if len(matches) == 0 {
		if !tg.AutoCreate {
			return refresher.Permanent(fmt.Errorf("%w: add a registry with server address %s in this Rancher environment, or set AUTO_CREATE=true", ErrNoRegistry, t.Host))
		}
		if rec.DryRun() {
			log.Info("dry run: would create registry and its credential")
			return nil
		}
		reg, existing, err := tg.createRegistry(ctx, t.Host)
		if err != nil {
			return err
		}
		if existing == nil {
			log.WithField("registry_id", reg.ID).Info("registry created")
			return tg.createCredential(ctx, rec, t, reg)
		}
		matches = existing
	}
	var errs []error
	for _, reg := range matches {
		if reg.ServerAddress != t.Host {
			log.WithFields(logrus.Fields{"registry_id": reg.ID, "server_address": reg.ServerAddress}).
				Debug("registry address is not the bare host; Rancher 1.x pulls only use registries whose address is the bare host")
		}
		if err := tg.syncRegistry(ctx, rec, t, reg); err != nil {
			errs = append(errs, fmt.Errorf("registry %s: %w", reg.ID, err))
		}
	}
	return errors.Join(errs...)
}

// createRegistry creates a registry for host. When Rancher answers that the
// address is used (a registry created meanwhile, or on a page that changed under
// us) it reads the list again and returns the registries that match instead.
func (tg *Target) createRegistry(ctx context.Context, host string) (rancherapi.Registry, []rancherapi.Registry, error) {
	reg, err := tg.Store.CreateRegistry(ctx, host, registryDescription)
	if err == nil {
		return reg, nil, nil
	}
	if !rancherapi.HasCode(err, "ServerAddressUsed") {
		return rancherapi.Registry{}, nil, fmt.Errorf("create registry: %w", err)
	}
	regs, lerr := tg.Store.ListRegistries(ctx)
	if lerr != nil {
		return rancherapi.Registry{}, nil, fmt.Errorf("create registry: address in use, then list registries: %w", lerr)
	}
	var found []rancherapi.Registry
	for _, reg := range regs {
		if h, err := refresher.NormalizeHost(reg.ServerAddress); err == nil && h == host && !gone(reg.State) {
			found = append(found, reg)
		}
	}
	if len(found) == 0 {
		return rancherapi.Registry{}, nil, fmt.Errorf("create registry: Rancher says a registry with address %s exists but none is listed (being removed?): %w", host, err)
	}
	return rancherapi.Registry{}, found, nil
}

// syncRegistry updates every usable credential of reg in place, or creates one
// when it has none.
func (tg *Target) syncRegistry(ctx context.Context, rec *refresher.Recorder, t refresher.Token, reg rancherapi.Registry) error {
	creds, err := tg.Store.ListRegistryCredentials(ctx, reg.ID)
	if err != nil {
		return fmt.Errorf("list credentials: %w", err)
	}
	usable := slices.DeleteFunc(creds, func(cr rancherapi.RegistryCredential) bool {
		return gone(cr.State) || cr.State == "inactive" || cr.State == "deactivating"
	})
	if len(usable) == 0 {
		return tg.createCredential(ctx, rec, t, reg)
	}
	content := refresher.Hash(t.Username, t.Password)
	var errs []error
	for _, cr := range usable {
		log := rec.Log().WithFields(logrus.Fields{"registry": t.Host, "registry_id": reg.ID, "credential_id": cr.ID})
		if cr.PublicValue == t.Username && rec.Unchanged(cr.ID, content, t) {
			log.Debug("registry credential unchanged")
			continue
		}
		if rec.DryRun() {
			log.Info("dry run: would update registry credential")
			continue
		}
		if _, err := tg.Store.UpdateRegistryCredential(ctx, cr.ID, tg.input(t, "")); err != nil {
			errs = append(errs, fmt.Errorf("update credential %s: %w", cr.ID, err))
			continue
		}
		rec.Written(cr.ID, content, "updated", t)
		log.WithField("expires_at", t.ExpiresAt.UTC().Format(time.RFC3339)).Info("registry credential updated")
	}
	return errors.Join(errs...)
}

func (tg *Target) createCredential(ctx context.Context, rec *refresher.Recorder, t refresher.Token, reg rancherapi.Registry) error {
	log := rec.Log().WithFields(logrus.Fields{"registry": t.Host, "registry_id": reg.ID})
	if rec.DryRun() {
		log.Info("dry run: would create registry credential")
		return nil
	}
	cr, err := tg.Store.CreateRegistryCredential(ctx, tg.input(t, reg.ID))
	if err != nil {
		return fmt.Errorf("create credential: %w", err)
	}
	rec.Written(cr.ID, refresher.Hash(t.Username, t.Password), "created", t)
	log.WithFields(logrus.Fields{"credential_id": cr.ID, "expires_at": t.ExpiresAt.UTC().Format(time.RFC3339)}).Info("registry credential created")
	return nil
}

func (tg *Target) input(t refresher.Token, registryID string) rancherapi.CredentialInput {
	email := tg.Email
	if email == "" {
		email = DefaultEmail
	}
	return rancherapi.CredentialInput{RegistryID: registryID, PublicValue: t.Username, SecretValue: t.Password, Email: email}
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

// gone reports whether a Cattle state means the resource is being removed.
func gone(state string) bool {
	switch state {
	case "removing", "removed", "purging", "purged":
		return true
	}
	return false
}
