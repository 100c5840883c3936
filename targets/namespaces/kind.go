package namespaces

import (
	"errors"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
)

// The settings of this kind (CONTRACT: "Kubernetes: pull secrets in
// namespaces of any cluster").
const (
	envNamespaces      = "KUBE_NAMESPACES"
	envSelector        = "KUBE_NAMESPACE_SELECTOR"
	envExclude         = "KUBE_EXCLUDE_NAMESPACES"
	envSecretName      = "KUBE_SECRET_NAME"
	envServiceAccounts = "KUBE_SERVICE_ACCOUNTS"
	envAdopt           = "KUBE_ADOPT_SECRETS"
	// envRancherURL is read only to tell whether a Rancher target is on
	// beside this one (then scope names carry ScopePrefix).
	envRancherURL = "CATTLE_URL"
)

// Kind is the Kubernetes namespaces target as the daemon's table of kinds
// registers it: its --help section, when it is on, and how it is built.
func Kind() setup.Kind {
	return setup.Kind{
		Section: setup.Section{
			Title:    "Kubernetes namespaces",
			Requires: "on with " + envNamespaces + " or " + envSelector + "; reaches the cluster in-cluster (its ServiceAccount) or through KUBECONFIG",
			Settings: []setup.Setting{
				{Env: envNamespaces, Usage: "comma list of namespace names or globs (team-*), or all"},
				{Env: envSelector, Usage: "label selector a namespace must also match (alone: every namespace that matches)"},
				{Env: envExclude, Default: strings.Join(DefaultExclude, ","), Usage: "namespace names or globs never written"},
				{Env: envSecretName, Default: DefaultSecretName, Usage: "name of the Secret written into each namespace"},
				{Env: envServiceAccounts, Usage: "ServiceAccount names in each selected namespace whose imagePullSecrets get the Secret"},
				{Env: envAdopt, Default: "false", Bool: true, Usage: "take over an existing Secret of that name without the label app.kubernetes.io/managed-by=rancher-ecr-credentials when it holds only registries this daemon manages (e.g. one nabsul/k8s-ecr-login-renew kept)"},
			},
		},
		On:    on,
		Build: build,
	}
}

// on: a namespace setting turns the kind on; so does KUBE_SERVICE_ACCOUNTS
// alone, which Build then reports as needing one.
func on(v setup.Values) bool {
	return len(v.List(envNamespaces)) > 0 || v.Get(envSelector) != "" || len(v.List(envServiceAccounts)) > 0
}

func build(v setup.Values, d setup.Deps) (*setup.Part, error) {
	p := &setup.Counted{Values: v}
	include := p.List(envNamespaces)
	if len(include) == 0 && p.Get(envSelector) == "" {
		p.Problem(envServiceAccounts, "set, but no namespace is selected: set %s or %s too", envNamespaces, envSelector)
	}
	o := Options{
		Selection:  parseSelection(include, p.Get(envSelector), p.List(envExclude), p.Problem),
		SecretName: p.Get(envSecretName),
		Adopt:      p.Bool(envAdopt),
		DryRun:     d.DryRun,
	}
	if errs := validation.IsDNS1123Subdomain(o.SecretName); len(errs) > 0 {
		p.Problem(envSecretName, "%q is not a Secret name: %s", o.SecretName, strings.Join(errs, "; "))
	}
	for _, sa := range p.List(envServiceAccounts) {
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			p.Problem(envServiceAccounts, "%q is not a ServiceAccount name: %s", sa, strings.Join(errs, "; "))
			continue
		}
		o.ServiceAccounts = append(o.ServiceAccounts, sa)
	}
	if p.Get(envRancherURL) != "" {
		o.ScopePrefix = ScopePrefix // never the same name as a Rancher scope
	}
	if p.N > 0 {
		return nil, nil
	}
	if d.Kubernetes == nil {
		return nil, errors.New("kubernetes namespaces: no Kubernetes configuration to build a client from")
	}
	cfg, _, err := d.Kubernetes()
	if err != nil {
		return nil, err
	}
	c, err := kubeapi.New(cfg)
	if err != nil {
		return nil, err
	}
	t := New(API(c), o)
	if d.Log != nil {
		t.Logger = d.Log
	}
	part := &setup.Part{Start: t.Start, Empty: t.Empty, Fields: t.Fields()}
	if len(o.ServiceAccounts) > 0 {
		part.Lead = t.Lead
	}
	return part, nil
}
