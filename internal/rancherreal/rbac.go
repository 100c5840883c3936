package rancherreal

import (
	"context"
	"errors"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
)

// AggregateClusterRoles fills every ClusterRole that has an aggregationRule with the rules of the
// ClusterRoles its selectors match, repeated until nothing changes, as kube-controller-manager's
// clusterrole-aggregation controller does (which this server lacks): without it the built-in
// admin, edit and view stay empty, and Rancher's Project Member (which inherits edit) may do nothing
// with Secrets (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles).
func AggregateClusterRoles(ctx context.Context, cfg *rest.Config) error {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for range 10 { // aggregation nests a few levels at most (admin ← edit ← view)
		list, err := c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("aggregate ClusterRoles: %w", err)
		}
		changed := false
		for i := range list.Items {
			cr := &list.Items[i]
			if cr.AggregationRule == nil {
				continue
			}
			rules, err := aggregatedRules(cr, list.Items)
			if err != nil {
				return err
			}
			if equality.Semantic.DeepEqual(cr.Rules, rules) {
				continue
			}
			cr.Rules = rules
			if _, err := c.RbacV1().ClusterRoles().Update(ctx, cr, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("aggregate ClusterRole %s: %w", cr.Name, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return errors.New("aggregate ClusterRoles: no fixed point after 10 rounds")
}

// aggregatedRules is what the aggregation controller puts in cr: the rules of every other
// ClusterRole matched by one of its selectors, in name order, without duplicates.
func aggregatedRules(cr *rbacv1.ClusterRole, all []rbacv1.ClusterRole) ([]rbacv1.PolicyRule, error) {
	var rules []rbacv1.PolicyRule
	names := make([]string, 0, len(all))
	byName := map[string]*rbacv1.ClusterRole{}
	for i := range all {
		names = append(names, all[i].Name)
		byName[all[i].Name] = &all[i]
	}
	slices.Sort(names)
	for _, sel := range cr.AggregationRule.ClusterRoleSelectors {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			return nil, fmt.Errorf("ClusterRole %s: %w", cr.Name, err)
		}
		for _, n := range names {
			other := byName[n]
			if n == cr.Name || !s.Matches(labels.Set(other.Labels)) {
				continue
			}
			for _, r := range other.Rules {
				if !slices.ContainsFunc(rules, func(x rbacv1.PolicyRule) bool { return equality.Semantic.DeepEqual(x, r) }) {
					rules = append(rules, r)
				}
			}
		}
	}
	return rules, nil
}

// Requests returns the requests the local cluster's apiserver served for user, made by it or
// in its name: Rancher's proxy impersonates the token's user (u-xxxxx, user-xxxxx). The audit log is
// written in blocking mode, so a request whose answer a client has is there.
func (s *Server) Requests(user string) ([]kubetest.AuditEvent, error) {
	events, err := s.Kube.AuditEvents()
	if err != nil {
		return nil, err
	}
	var out []kubetest.AuditEvent
	for _, ev := range events {
		if ev.User.Username == user || (ev.ImpersonatedUser != nil && ev.ImpersonatedUser.Username == user) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// Grant says what RBAC allowed (or refused) a request: "verb resource[.group][/subresource][ name]
// in namespace <ns>|cluster".
func Grant(ev kubetest.AuditEvent) string {
	o := ev.ObjectRef
	if o == nil {
		return ev.Verb + " " + ev.RequestURI
	}
	res := o.Resource
	if o.APIGroup != "" {
		res += "." + o.APIGroup
	}
	if o.Subresource != "" {
		res += "/" + o.Subresource
	}
	if o.Name != "" {
		res += " " + o.Name
	}
	where := "cluster"
	if o.Namespace != "" {
		where = "namespace " + o.Namespace
	}
	return fmt.Sprintf("%s %s in %s", ev.Verb, res, where)
}

// Grants lists the Grant of each request, sorted, without duplicates: the RBAC they needed.
func Grants(events []kubetest.AuditEvent) []string {
	var out []string
	for _, ev := range events {
		if g := Grant(ev); !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}
