package app

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/consumers"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/settings"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

// Kinds is the one table of the kinds of target: a new kind is its package
// and one entry here.
func Kinds() []setup.Kind {
	return []setup.Kind{rancher.Kind(), namespaces.Kind(), consumers.Kind()}
}

// shared are the sections of the settings every mode shares.
func shared() []setup.Section {
	return []setup.Section{ecrSection(), daemonSection(), limitsSection()}
}

// Sections are every section of settings, as --help lists them: those every
// mode shares, then each kind's.
func Sections(kinds []setup.Kind) []setup.Section {
	out := shared()
	for _, k := range kinds {
		out = append(out, k.Section)
		out = append(out, k.More...)
	}
	return out
}

// Settings are every setting the daemon reads, <name>_FILE variants
// included, in the order --help lists them (for the deployment tests: every
// variable a chart or compose file may set).
func Settings() []setup.Setting { return settings.Expand(Sections(Kinds())) }

// parts are the kinds turned on, built.
type parts struct {
	list []*setup.Part
	// fields are what the start-up line says of the settings: the shared
	// ones, each kind's on, and what its part adds.
	fields logrus.Fields
}

// buildParts builds the part of every kind the settings turn on, reporting
// problems through v; the error is what v's problems do not say (a kind that
// could not be built, no kind on at all).
func buildParts(v *settings.Values, kinds []setup.Kind, d setup.Deps) (parts, error) {
	p := parts{fields: v.Fields(shared()...)}
	var errs []error
	on := 0
	for _, k := range kinds {
		if !k.On(v) {
			continue
		}
		on++
		part, err := k.Build(v, d)
		if err != nil {
			errs = append(errs, err)
		}
		if part == nil {
			continue
		}
		p.list = append(p.list, part)
		maps.Copy(p.fields, v.Fields(append([]setup.Section{k.Section}, k.More...)...))
		maps.Copy(p.fields, part.Fields)
	}
	if on == 0 {
		errs = append(errs, errors.New(noKind(kinds)))
	}
	return p, errors.Join(errs...)
}

// noKind says, in one line, that no kind is on and what turns each on.
func noKind(kinds []setup.Kind) string {
	var ways []string
	for _, k := range kinds {
		for _, s := range append([]setup.Section{k.Section}, k.More...) {
			title, _, _ := strings.Cut(s.Title, ":")
			ways = append(ways, title+": "+s.Requires)
		}
	}
	return "nothing to write into: no target is configured; set what one of them requires. " + strings.Join(ways, ". ")
}

// scopes are the parts' static scopes.
func (p parts) scopes() []refresher.Scope {
	var out []refresher.Scope
	for _, part := range p.list {
		out = append(out, part.Scopes...)
	}
	return out
}

// discover finds the scopes of every part that discovers them, nil when none
// does. A part that fails keeps the scopes it found last, so a cluster that
// cannot be listed does not stop Rancher being written, nor the reverse; the
// error is still reported.
func (p parts) discover() func(context.Context) ([]refresher.Scope, error) {
	var fns []func(context.Context) ([]refresher.Scope, error)
	for _, part := range p.list {
		if part.Discover != nil {
			fns = append(fns, part.Discover)
		}
	}
	if len(fns) == 0 {
		return nil
	}
	var mu sync.Mutex
	last := make([][]refresher.Scope, len(fns))
	return func(ctx context.Context) ([]refresher.Scope, error) {
		mu.Lock()
		defer mu.Unlock()
		var scopes []refresher.Scope
		var errs []error
		for i, f := range fns {
			s, err := f(ctx)
			if err != nil {
				errs = append(errs, err)
			} else {
				last[i] = s
			}
			scopes = append(scopes, last[i]...)
		}
		return scopes, errors.Join(errs...)
	}
}

// explainNoScopes says why no part has a scope, from each part's Empty.
func (p parts) explainNoScopes() string {
	var why []string
	for _, part := range p.list {
		if part.Empty != nil {
			if s := part.Empty(); s != "" {
				why = append(why, s)
			}
		}
	}
	return strings.Join(why, "; ")
}

// start runs every part's Start: watches that push scopes into r, until ctx
// is done. It returns once each has done its first listing.
func (p parts) start(ctx context.Context, r *refresher.Refresher) error {
	var errs []error
	for _, part := range p.list {
		if part.Start != nil {
			errs = append(errs, part.Start(ctx, r))
		}
	}
	return errors.Join(errs...)
}

// lead runs every part's Lead beside write, while this replica writes.
func (p parts) lead(ctx context.Context, write func(context.Context) error) error {
	var wg sync.WaitGroup
	for _, part := range p.list {
		if part.Lead != nil {
			wg.Go(func() { part.Lead(ctx) })
		}
	}
	err := write(ctx)
	wg.Wait()
	return err
}
