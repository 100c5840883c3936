// Package consumer is what the consumer targets (targets/labelled,
// targets/argocd, targets/rancherapps) share: the namespaces whose Secrets
// are considered (KUBE_CONSUMER_NAMESPACES), label-selected Secret watches
// that keep only the few fields a target reads (run by kubewatch), and the
// bookkeeping that keeps a target's scopes in the refresher in step with what
// its watch sees. See docs/consumers.md.
package consumer

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Namespaces selects the namespaces whose Secrets are considered: names or
// path.Match globs (team-*); none, or "all", is every namespace.
type Namespaces struct {
	patterns []string
}

// ParseNamespaces reads the list; a problem names the entry.
func ParseNamespaces(list []string) (Namespaces, error) {
	var n Namespaces
	for _, p := range list {
		if strings.EqualFold(p, "all") {
			if len(list) > 1 {
				return Namespaces{}, fmt.Errorf("%q must stand alone", p)
			}
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return Namespaces{}, fmt.Errorf("%q is not a name or glob: %v", p, err)
		}
		n.patterns = append(n.patterns, p)
	}
	return n, nil
}

// Selects reports whether the Secrets of namespace ns are considered.
func (n Namespaces) Selects(ns string) bool {
	if len(n.patterns) == 0 {
		return true
	}
	for _, p := range n.patterns {
		if ok, _ := path.Match(p, ns); ok {
			return true
		}
	}
	return false
}

// Names returns the namespaces when every entry is a plain name (then each
// is watched on its own, and RBAC can be granted per namespace), else nil:
// every namespace is watched and those not selected are dropped.
func (n Namespaces) Names() []string {
	if len(n.patterns) == 0 || slices.ContainsFunc(n.patterns, func(p string) bool { return strings.ContainsAny(p, `*?[\`) }) {
		return nil
	}
	return slices.Clone(n.patterns)
}

// String names the selection as it was set: "all" or the list.
func (n Namespaces) String() string {
	if len(n.patterns) == 0 {
		return "all"
	}
	return strings.Join(n.patterns, ",")
}
