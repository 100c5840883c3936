package kube

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// DefaultExclude are the namespaces never written unless KUBE_EXCLUDE_NAMESPACES
// says otherwise: the cluster's own.
var DefaultExclude = []string{"kube-system", "kube-public", "kube-node-lease"}

// Selection is which namespaces get the Secret: those matching Include (names
// or path.Match globs; empty or "all" means every namespace) and Selector, and
// none matching Exclude. A namespace being deleted is never selected.
type Selection struct {
	Include  []string
	Selector labels.Selector // nil: every namespace
	Exclude  []string
}

// ParseSelection reads the three settings (include and exclude as lists, the
// label selector as one string) and names the first bad value.
func ParseSelection(include []string, selector string, exclude []string) (Selection, error) {
	var s Selection
	for _, p := range include {
		if strings.EqualFold(p, "all") {
			if len(include) > 1 {
				return s, fmt.Errorf("KUBE_NAMESPACES: \"all\" must stand alone")
			}
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return s, fmt.Errorf("KUBE_NAMESPACES: %q is not a name or glob: %v", p, err)
		}
		s.Include = append(s.Include, p)
	}
	for _, p := range exclude {
		if _, err := path.Match(p, ""); err != nil {
			return s, fmt.Errorf("KUBE_EXCLUDE_NAMESPACES: %q is not a name or glob: %v", p, err)
		}
		s.Exclude = append(s.Exclude, p)
	}
	if sel := strings.TrimSpace(selector); sel != "" {
		ls, err := labels.Parse(sel)
		if err != nil {
			return s, fmt.Errorf("KUBE_NAMESPACE_SELECTOR: %q: %v", sel, err)
		}
		s.Selector = ls
	}
	return s, nil
}

// Selects reports whether ns gets the Secret.
func (s Selection) Selects(ns *corev1.Namespace) bool {
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return false
	}
	if matchAny(s.Exclude, ns.Name) {
		return false
	}
	if len(s.Include) > 0 && !matchAny(s.Include, ns.Name) {
		return false
	}
	return s.Selector == nil || s.Selector.Matches(labels.Set(ns.Labels))
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
