// Package refresher gets ECR login tokens and writes them into Rancher registry
// credentials, once (RunOnce) or on a schedule (Run). It knows nothing of HTTP
// paths: Rancher is reached through RegistryStore, ECR through ECRAPI.
package refresher

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
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
	// ScopeConcurrency bounds how many scopes are written at once.
	ScopeConcurrency = 4
	// DefaultRetryMinInterval and DefaultRetryMaxInterval bound the backoff.
	DefaultRetryMinInterval = 30 * time.Second
	DefaultRetryMaxInterval = 15 * time.Minute

	registryDescription = "Amazon ECR registry; its credential is refreshed by rancher-ecr-credentials"
)

// ErrNoRegistry is matched by errors.Is when a scope has no registry for a host
// and AUTO_CREATE is off.
var ErrNoRegistry = errors.New("no registry for this host")

// Refresher keeps registry credentials fresh. Set the exported fields before the
// first run and do not change them afterwards.
type Refresher struct {
	mu         sync.Mutex
	written    map[string][sha256.Size]byte // scope + credential id → hash of what this process last wrote there
	warned     map[string]bool              // hosts already warned about an implausible expiresAt
	pairs      map[pairKey]*pairState
	sources    []sourceState // parallel to Sources
	runStarted time.Time     // zero when no run is in flight
	loopExited bool

	// Sources are the ECR calls made per run, one per region.
	Sources []Source
	// Scopes are the Rancher scopes written into. With Discover set, they are
	// replaced at the start of every full run.
	Scopes []Scope
	// Discover, when set, finds the scopes anew at every full run
	// (RANCHER_PROJECTS=all), so projects created meanwhile are picked up.
	Discover func(ctx context.Context) ([]Scope, error)
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
	// RetryMinInterval and RetryMaxInterval bound the backoff after a failure;
	// RetryMinInterval is also the shortest time between two refreshes of a pair.
	RetryMinInterval, RetryMaxInterval time.Duration
	// Metrics, when set, receives run and write outcomes.
	Metrics *Metrics
	// Logger receives one line per write and per failure, and one summary per run.
	Logger logrus.FieldLogger
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Jitter returns a random duration in [0, d); tests replace it.
	Jitter func(d time.Duration) time.Duration
	// OnRunDone, when set, is called at the end of every run with its result.
	OnRunDone func(err error)
}

// New returns a refresher with defaults for everything but its sources and scopes.
func New(sources []Source, scopes []Scope) *Refresher {
	return &Refresher{
		written:          map[string][sha256.Size]byte{},
		warned:           map[string]bool{},
		pairs:            map[pairKey]*pairState{},
		sources:          make([]sourceState, len(sources)),
		Sources:          sources,
		Scopes:           scopes,
		Email:            DefaultEmail,
		RunTimeout:       DefaultRunTimeout,
		ShutdownTimeout:  DefaultShutdownTimeout,
		RetryMinInterval: DefaultRetryMinInterval,
		RetryMaxInterval: DefaultRetryMaxInterval,
		Logger:           logrus.StandardLogger(),
		Now:              time.Now,
		Jitter:           func(d time.Duration) time.Duration { return rand.N(max(d, 1)) },
	}
}

func (r *Refresher) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return r.Jitter(d)
}

// counts is what one run did, for its summary line.
type counts struct{ written, unchanged atomic.Int64 }

// RunOnce is one full reconcile: fetch a token per registry, then in every scope
// write it into every credential of every registry whose address matches its
// host. A failure on one registry or scope does not stop the others. Each failure
// is logged once here, with its scope and host; the returned error joins them all.
func (r *Refresher) RunOnce(ctx context.Context) error { return r.run(ctx, true) }

// RunDue refreshes only what is due now: pairs whose freshness deadline or retry
// time has come, and registries whose ECR call failed. What is fresh is left alone.
func (r *Refresher) RunDue(ctx context.Context) error { return r.run(ctx, false) }

func (r *Refresher) run(ctx context.Context, all bool) error {
	start := r.Now()
	r.setRunning(start)
	defer r.setRunning(time.Time{})
	sel := r.selectDue(start, all)

	// Every token is fetched, even in a retry run: one call per region, and a
	// Rancher 2.x credential holding hosts of several regions can only be
	// rewritten whole. What is written is only what sel wants.
	var errs []error
	var tokens []Token
	for i, src := range r.Sources {
		toks, bad, err := src.fetch(ctx, r.Now())
		if err != nil {
			r.recordSource(i, r.Now(), err)
			r.Logger.WithError(err).WithField("region", src.Region).Error("ecr token fetch failed")
			errs = append(errs, err)
			continue
		}
		// An unusable entry fails the source (it is retried whole); the good
		// entries are still written.
		r.recordSource(i, r.Now(), errors.Join(bad...))
		for _, e := range bad {
			r.Logger.WithError(e).WithField("region", src.Region).Error("ecr token unusable")
		}
		errs = append(errs, bad...)
		for _, t := range toks {
			t.source = i
			if r.ProxyHost != "" {
				t.Host = r.ProxyHost
			}
			r.warnClamped(t)
			tokens = append(tokens, t)
		}
	}

	if all && r.Discover != nil {
		if err := r.discover(ctx); err != nil {
			r.Logger.WithError(err).Error("project discovery failed; writing into the projects found before")
			errs = append(errs, err)
		}
	}
	scopes := r.currentScopes()
	if len(scopes) == 0 && len(errs) == 0 {
		err := errors.New("no scope to write into: RANCHER_PROJECTS=all found no environment or project this key can see")
		r.Logger.WithError(err).Error("nothing written")
		errs = append(errs, err)
	}
	var c counts
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, ScopeConcurrency)
	for _, sc := range scopes {
		var due []Token
		for _, t := range tokens {
			if sel.wants(t, sc.Name) {
				due = append(due, t)
			}
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e := r.syncAny(ctx, sc, due, tokens, &c)
			mu.Lock()
			errs = append(errs, e...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	end := r.Now()
	l := r.Logger.WithFields(logrus.Fields{
		"written": c.written.Load(), "unchanged": c.unchanged.Load(), "failed": len(errs),
		"registries": len(tokens), "scopes": len(scopes), "duration": end.Sub(start).Round(time.Millisecond).String(),
	})
	if !all {
		l = l.WithField("retry", true)
	}
	if r.DryRun {
		l = l.WithField("dry_run", true)
	}
	if next := r.NextDue(); !next.IsZero() {
		l = l.WithField("next_due", next.UTC().Format(time.RFC3339))
	}
	if len(errs) > 0 {
		l.Warn("run finished with failures")
	} else {
		l.Info("run finished")
	}
	err := errors.Join(errs...)
	r.Metrics.run(end, end.Sub(start), err)
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
		return r.failScope(sc, tokens, fmt.Errorf("scope %s: list registries: %w", sc.Name, err))
	}
	// Only the hosts being written are indexed: a scope's thousands of other
	// registries cost their decoding and nothing more.
	byHost := make(map[string][]rancherapi.Registry, len(tokens))
	for _, t := range tokens {
		byHost[t.Host] = nil
	}
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
		if matches, want := byHost[h]; want {
			byHost[h] = append(matches, reg)
		}
	}

	var errs []error
	for _, t := range tokens {
		if err := r.finishPair(sc, t, r.syncHost(ctx, sc, t, byHost[t.Host], c)); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// syncAny writes the due tokens into a scope of either Rancher version. A panic
// (a bug) fails that scope only: it runs on its own goroutine, where nothing
// else would catch it, and must not take the daemon or the other scopes down.
func (r *Refresher) syncAny(ctx context.Context, sc Scope, due, all []Token, c *counts) (errs []error) {
	defer func() {
		if p := recover(); p != nil {
			errs = r.failScope(sc, due, fmt.Errorf("scope %s: internal error: %v", sc.Name, p))
		}
	}()
	if sc.Docker != nil {
		return r.syncDockerScope(ctx, sc, due, all, c)
	}
	return r.syncScope(ctx, sc, due, c)
}

// failScope fails every token of a scope that could not be written at all.
func (r *Refresher) failScope(sc Scope, tokens []Token, err error) []error {
	r.Logger.WithField("scope", sc.Name).WithError(err).Error("scope failed")
	for _, t := range tokens {
		r.recordPair(t, sc.Name, r.Now(), err)
		r.Metrics.write(t.Host, sc.Name, "failed")
	}
	return []error{err}
}

// finishPair records the outcome of writing t into sc, and logs and returns a
// failure with its host and scope.
func (r *Refresher) finishPair(sc Scope, t Token, err error) error {
	r.recordPair(t, sc.Name, r.Now(), err)
	if err == nil {
		return nil
	}
	r.Metrics.write(t.Host, sc.Name, "failed")
	err = fmt.Errorf("%s in scope %s: %w", t.Host, sc.Name, err)
	r.Logger.WithFields(logrus.Fields{"scope": sc.Name, "registry": t.Host}).WithError(err).Error("credential not written")
	return err
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
		if cr.PublicValue == t.Username && r.wrote(sc.Name, cr.ID, tokenHash(t)) {
			r.unchanged(sc.Name, t, c)
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
		r.booked(sc.Name, cr.ID, tokenHash(t), t, "updated", c)
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
	r.booked(sc.Name, cr.ID, tokenHash(t), t, "created", c)
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

// wrote reports whether this process already wrote exactly this content (by
// hash) there. Rancher never returns passwords, so memory is the only way to know.
func (r *Refresher) wrote(scope, credID string, h [sha256.Size]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.written[scope+"\x00"+credID]
	return ok && old == h
}

// booked accounts for a write Rancher accepted: remembered (so the same content
// is not written again), counted for the run's summary, and measured.
func (r *Refresher) booked(scope, credID string, content [sha256.Size]byte, t Token, result string, c *counts) {
	r.remember(scope, credID, content)
	c.written.Add(1)
	r.Metrics.write(t.Host, scope, result)
	r.Metrics.written(t.Host, t.ExpiresAt)
}

// unchanged accounts for a credential that already holds exactly t.
func (r *Refresher) unchanged(scope string, t Token, c *counts) {
	c.unchanged.Add(1)
	r.Metrics.write(t.Host, scope, "unchanged")
}

func (r *Refresher) remember(scope, credID string, h [sha256.Size]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written[scope+"\x00"+credID] = h
}
