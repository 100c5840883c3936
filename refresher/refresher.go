// Package refresher gets ECR login tokens and writes them into Rancher registry
// credentials, once (RunOnce) or on a schedule (Run). It knows nothing of HTTP
// paths: Rancher is reached through RegistryStore, ECR through ECRAPI.
package refresher

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
)

const (
	// DefaultEmail is sent with every credential write: Rancher's /v1 API requires a
	// non-empty email and Docker ignores it for ECR (spec §1.12).
	DefaultEmail = "not-really@required.anymore"
	// DefaultRunTimeout bounds one scheduled run.
	DefaultRunTimeout = 5 * time.Minute
	// DefaultShutdownTimeout is how long a stop waits for a run in flight.
	DefaultShutdownTimeout = 10 * time.Second

	registryDescription = "Amazon ECR registry; its credential is refreshed by rancher-ecr-credentials"
)

// ErrNoRegistry is matched by errors.Is when a scope has no registry for a host
// and AUTO_CREATE is off.
var ErrNoRegistry = errors.New("no registry for this host")

// PairStatus is the state of one (registry host, scope) pair, as /readyz shows it.
// It never holds a secret.
type PairStatus struct {
	Host        string    `json:"host"`
	Scope       string    `json:"scope"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`

	region, registryID string
}

type pairKey struct{ host, scope string }

// Refresher keeps registry credentials fresh. Set the exported fields before the
// first run and do not change them afterwards.
type Refresher struct {
	mu      sync.Mutex
	written map[string][sha256.Size]byte // scope + credential id → hash of what this process last wrote there
	warned  map[string]bool              // hosts already warned about an implausible expiresAt
	status  map[pairKey]*PairStatus

	// Sources are the ECR calls made per run, one per region.
	Sources []Source
	// Scopes are the Rancher scopes written into.
	Scopes []Scope
	// AutoCreate creates a registry for a host that has none in a scope.
	AutoCreate bool
	// ProxyHost, when set, is the host credentials are written under instead of
	// the ECR host. Only valid with a single registry.
	ProxyHost string
	// DryRun reads everything and logs the writes it would make, writing nothing.
	DryRun bool
	// Email is sent with every credential write; empty means DefaultEmail.
	Email string
	// RunTimeout bounds each scheduled run.
	RunTimeout time.Duration
	// ShutdownTimeout is how long Run waits for a run in flight once ctx is done.
	ShutdownTimeout time.Duration
	// Logger receives one line per write and per failure, and one summary per run.
	Logger logrus.FieldLogger
	// Now is the clock; tests replace it.
	Now func() time.Time
	// OnRunDone, when set, is called at the end of every run with its result.
	OnRunDone func(err error)
}

// New returns a refresher with defaults for everything but its sources and scopes.
func New(sources []Source, scopes []Scope) *Refresher {
	return &Refresher{
		written:         map[string][sha256.Size]byte{},
		warned:          map[string]bool{},
		status:          map[pairKey]*PairStatus{},
		Sources:         sources,
		Scopes:          scopes,
		Email:           DefaultEmail,
		RunTimeout:      DefaultRunTimeout,
		ShutdownTimeout: DefaultShutdownTimeout,
		Logger:          logrus.StandardLogger(),
		Now:             time.Now,
	}
}

// counts is what one run did, for its summary line.
type counts struct{ written, unchanged int }

// RunOnce is one reconcile: fetch a token per registry, then in every scope write
// it into every credential of every registry whose address matches its host.
// A failure on one registry or scope does not stop the others. Each failure is
// logged once here, with its scope and host; the returned error joins them all.
func (r *Refresher) RunOnce(ctx context.Context) error {
	start := r.Now()
	var errs []error
	var tokens []Token
	for _, src := range r.Sources {
		toks, bad, err := src.fetch(ctx, r.Now())
		if err != nil {
			r.Logger.WithError(err).WithField("region", src.Region).Error("ecr token fetch failed")
			r.markSourceFailed(src, err)
			errs = append(errs, err)
			continue
		}
		for _, e := range bad {
			r.Logger.WithError(e).WithField("region", src.Region).Error("ecr token unusable")
		}
		errs = append(errs, bad...)
		tokens = append(tokens, toks...)
	}
	for i := range tokens {
		if r.ProxyHost != "" {
			tokens[i].Host = r.ProxyHost
		}
		r.warnClamped(tokens[i])
	}

	var c counts
	for _, sc := range r.Scopes {
		errs = append(errs, r.syncScope(ctx, sc, tokens, &c)...)
	}
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	l := r.Logger.WithFields(logrus.Fields{
		"written": c.written, "unchanged": c.unchanged, "failed": len(errs),
		"registries": len(tokens), "scopes": len(r.Scopes), "duration": r.Now().Sub(start).Round(time.Millisecond).String(),
	})
	if r.DryRun {
		l = l.WithField("dry_run", true)
	}
	if len(errs) > 0 {
		l.Warn("run finished with failures")
	} else {
		l.Info("run finished")
	}
	err := errors.Join(errs...)
	if r.OnRunDone != nil {
		r.OnRunDone(err)
	}
	return err
}

// warnClamped warns once per host when ECR's expiresAt could not be trusted.
func (r *Refresher) warnClamped(t Token) {
	if !t.Clamped {
		return
	}
	r.mu.Lock()
	first := !r.warned[t.ECRHost]
	r.warned[t.ECRHost] = true
	r.mu.Unlock()
	if first {
		r.Logger.WithFields(logrus.Fields{"registry": t.ECRHost, "assumed_expires_at": t.ExpiresAt.UTC().Format(time.RFC3339)}).
			Warn("ecr expiresAt is in the past or more than 12h ahead (clock skew or an emulator); assuming a 12h token")
	}
}

// syncScope writes every token into one scope and returns one error per failed host.
func (r *Refresher) syncScope(ctx context.Context, sc Scope, tokens []Token, c *counts) []error {
	if len(tokens) == 0 {
		return nil
	}
	log := r.Logger.WithField("scope", sc.Name)
	regs, err := sc.Store.ListRegistries(ctx)
	if err != nil {
		err = fmt.Errorf("scope %s: list registries: %w", sc.Name, err)
		log.WithError(err).Error("rancher registries unreadable")
		for _, t := range tokens {
			r.record(t, sc.Name, err)
		}
		return []error{err}
	}
	byHost := map[string][]rancherapi.Registry{}
	for _, reg := range regs {
		if gone(reg.State) {
			continue
		}
		h, err := NormalizeHost(reg.ServerAddress)
		if err != nil {
			log.WithFields(logrus.Fields{"registry_id": reg.ID, "server_address": reg.ServerAddress, "reason": err.Error()}).
				Warn("registry server address unparsable; skipped")
			continue
		}
		byHost[h] = append(byHost[h], reg)
	}

	var errs []error
	for _, t := range tokens {
		err := r.syncHost(ctx, sc, t, byHost[t.Host], c)
		r.record(t, sc.Name, err)
		if err != nil {
			err = fmt.Errorf("%s in scope %s: %w", t.Host, sc.Name, err)
			log.WithField("registry", t.Host).WithError(err).Error("registry credential not written")
			errs = append(errs, err)
		}
	}
	return errs
}

// syncHost writes one token into every registry of a scope that matches its host,
// creating the registry first when none does and AutoCreate is on.
func (r *Refresher) syncHost(ctx context.Context, sc Scope, t Token, matches []rancherapi.Registry, c *counts) error {
	log := r.Logger.WithFields(logrus.Fields{"scope": sc.Name, "registry": t.Host})
	if len(matches) == 0 {
		if !r.AutoCreate {
			return fmt.Errorf("%w: add a registry with server address %s in this Rancher environment, or set AUTO_CREATE=true", ErrNoRegistry, t.Host)
		}
		if r.DryRun {
			log.Info("dry run: would create registry and its credential")
			return nil
		}
		reg, existing, err := r.createRegistry(ctx, sc, t.Host)
		if err != nil {
			return err
		}
		if existing == nil {
			log.WithField("registry_id", reg.ID).Info("registry created")
			return r.createCredential(ctx, sc, t, reg, c)
		}
		matches = existing
	}
	var errs []error
	for _, reg := range matches {
		if reg.ServerAddress != t.Host {
			log.WithFields(logrus.Fields{"registry_id": reg.ID, "server_address": reg.ServerAddress}).
				Debug("registry address is not the bare host; Rancher 1.x pulls only use registries whose address is the bare host")
		}
		if err := r.syncRegistry(ctx, sc, t, reg, c); err != nil {
			errs = append(errs, fmt.Errorf("registry %s: %w", reg.ID, err))
		}
	}
	return errors.Join(errs...)
}

// createRegistry creates a registry for host. When Rancher answers that the address
// is used (a registry created meanwhile, or on a page that changed under us) it
// reads the list again and returns the registries that match instead.
func (r *Refresher) createRegistry(ctx context.Context, sc Scope, host string) (rancherapi.Registry, []rancherapi.Registry, error) {
	reg, err := sc.Store.CreateRegistry(ctx, host, registryDescription)
	if err == nil {
		return reg, nil, nil
	}
	if !rancherapi.HasCode(err, "ServerAddressUsed") {
		return rancherapi.Registry{}, nil, fmt.Errorf("create registry: %w", err)
	}
	regs, lerr := sc.Store.ListRegistries(ctx)
	if lerr != nil {
		return rancherapi.Registry{}, nil, fmt.Errorf("create registry: address in use, then list registries: %w", lerr)
	}
	var found []rancherapi.Registry
	for _, reg := range regs {
		if h, err := NormalizeHost(reg.ServerAddress); err == nil && h == host && !gone(reg.State) {
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
func (r *Refresher) syncRegistry(ctx context.Context, sc Scope, t Token, reg rancherapi.Registry, c *counts) error {
	creds, err := sc.Store.ListRegistryCredentials(ctx, reg.ID)
	if err != nil {
		return fmt.Errorf("list credentials: %w", err)
	}
	usable := slices.DeleteFunc(creds, func(cr rancherapi.RegistryCredential) bool {
		return gone(cr.State) || cr.State == "inactive" || cr.State == "deactivating"
	})
	if len(usable) == 0 {
		return r.createCredential(ctx, sc, t, reg, c)
	}
	var errs []error
	for _, cr := range usable {
		log := r.Logger.WithFields(logrus.Fields{"scope": sc.Name, "registry": t.Host, "registry_id": reg.ID, "credential_id": cr.ID})
		if cr.PublicValue == t.Username && r.wrote(sc.Name, cr.ID, t) {
			c.unchanged++
			log.Debug("registry credential unchanged")
			continue
		}
		if r.DryRun {
			log.Info("dry run: would update registry credential")
			continue
		}
		if _, err := sc.Store.UpdateRegistryCredential(ctx, cr.ID, r.input(t, "")); err != nil {
			errs = append(errs, fmt.Errorf("update credential %s: %w", cr.ID, err))
			continue
		}
		r.remember(sc.Name, cr.ID, t)
		c.written++
		log.WithField("expires_at", t.ExpiresAt.UTC().Format(time.RFC3339)).Info("registry credential updated")
	}
	return errors.Join(errs...)
}

func (r *Refresher) createCredential(ctx context.Context, sc Scope, t Token, reg rancherapi.Registry, c *counts) error {
	log := r.Logger.WithFields(logrus.Fields{"scope": sc.Name, "registry": t.Host, "registry_id": reg.ID})
	if r.DryRun {
		log.Info("dry run: would create registry credential")
		return nil
	}
	cr, err := sc.Store.CreateRegistryCredential(ctx, r.input(t, reg.ID))
	if err != nil {
		return fmt.Errorf("create credential: %w", err)
	}
	r.remember(sc.Name, cr.ID, t)
	c.written++
	log.WithFields(logrus.Fields{"credential_id": cr.ID, "expires_at": t.ExpiresAt.UTC().Format(time.RFC3339)}).Info("registry credential created")
	return nil
}

func (r *Refresher) input(t Token, registryID string) rancherapi.CredentialInput {
	email := r.Email
	if email == "" {
		email = DefaultEmail
	}
	return rancherapi.CredentialInput{RegistryID: registryID, PublicValue: t.Username, SecretValue: t.Password, Email: email}
}

// gone reports whether a Cattle state means the resource is being removed.
func gone(state string) bool {
	switch state {
	case "removing", "removed", "purging", "purged":
		return true
	}
	return false
}

func tokenHash(t Token) [sha256.Size]byte {
	return sha256.Sum256([]byte(t.Username + "\x00" + t.Password))
}

// wrote reports whether this process already wrote exactly this token there.
// Rancher never returns the password, so memory is the only way to know.
func (r *Refresher) wrote(scope, credID string, t Token) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.written[scope+"\x00"+credID]
	return ok && h == tokenHash(t)
}

func (r *Refresher) remember(scope, credID string, t Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written[scope+"\x00"+credID] = tokenHash(t)
}

// record updates the status of a (host, scope) pair after a write attempt.
func (r *Refresher) record(t Token, scope string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := pairKey{t.Host, scope}
	p := r.status[k]
	if p == nil {
		p = &PairStatus{Host: t.Host, Scope: scope, region: t.Region, registryID: t.RegistryID}
		r.status[k] = p
	}
	switch {
	case err != nil:
		p.LastError = err.Error()
	case !r.DryRun:
		p.LastSuccess, p.ExpiresAt, p.LastError = r.Now(), t.ExpiresAt, ""
	}
}

// markSourceFailed records an ECR failure on every known pair of that source.
func (r *Refresher) markSourceFailed(src Source, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.status {
		if p.region == src.Region && (len(src.RegistryIDs) == 0 || slices.Contains(src.RegistryIDs, p.registryID)) {
			p.LastError = err.Error()
		}
	}
}

// Status returns the state of every (host, scope) pair seen so far, sorted.
func (r *Refresher) Status() []PairStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]PairStatus, 0, len(r.status))
	for _, p := range r.status {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b PairStatus) int {
		if a.Host != b.Host {
			return cmp.Compare(a.Host, b.Host)
		}
		return cmp.Compare(a.Scope, b.Scope)
	})
	return out
}
