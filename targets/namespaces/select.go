package namespaces

import (
	"errors"
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
// label selector as one string); each problem names its setting.
func ParseSelection(include []string, selector string, exclude []string) (Selection, error) {
	var errs []error
	s := parseSelection(include, selector, exclude, func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf(env+": "+format, args...))
	})
	return s, errors.Join(errs...)
}

// parseSelection reads the settings, reporting each problem with the
// setting's variable (as setup.Values.Problem does).
func parseSelection(include []string, selector string, exclude []string, problem func(env, format string, args ...any)) Selection {
	var s Selection
	for _, p := range include {
		if strings.EqualFold(p, "all") {
			if len(include) > 1 {
				problem(envNamespaces, "\"all\" must stand alone")
			}
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			problem(envNamespaces, "%q is not a name or glob: %v", p, err)
			continue
		}
		s.Include = append(s.Include, p)
	}
	for _, p := range exclude {
		if _, err := path.Match(p, ""); err != nil {
			problem(envExclude, "%q is not a name or glob: %v", p, err)
			continue
		}
		s.Exclude = append(s.Exclude, p)
	}
	if sel := strings.TrimSpace(selector); sel != "" {
		ls, err := labels.Parse(sel)
		if err != nil {
			problem(envSelector, "%q is not a label selector: %v", sel, err)
		} else {
			s.Selector = ls
		}
	}
	return s
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

// String names the selection by its settings, as an operator set them:
// `KUBE_NAMESPACE_SELECTOR "team=a" (KUBE_EXCLUDE_NAMESPACES "kube-system")`.
func (s Selection) String() string {
	var parts []string
	if len(s.Include) > 0 {
		parts = append(parts, fmt.Sprintf("%s %q", envNamespaces, strings.Join(s.Include, ",")))
	}
	if s.Selector != nil {
		parts = append(parts, fmt.Sprintf("%s %q", envSelector, s.Selector.String()))
	}
	if len(parts) == 0 {
		parts = append(parts, envNamespaces+` "all"`)
	}
	out := strings.Join(parts, " with ")
	if len(s.Exclude) > 0 {
		out += fmt.Sprintf(" (%s %q)", envExclude, strings.Join(s.Exclude, ","))
	}
	return out
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
