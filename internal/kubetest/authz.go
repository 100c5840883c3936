package kubetest

import (
	"fmt"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
)

// WaitAuthorized waits until the API server answers want for user (of
// groups) doing attrs, asked by admin with a SubjectAccessReview, so user's
// own requests are not counted. The authorizer's RBAC cache follows a new or
// deleted Role or binding a moment later
// (https://kubernetes.io/docs/reference/access-authn-authz/rbac/): a test
// that grants and then acts at once is flaky without this.
func WaitAuthorized(t testing.TB, admin kubernetes.Interface, user string, groups []string, attrs authorizationv1.ResourceAttributes, want bool) {
	t.Helper()
	what := fmt.Sprintf("%s to be allowed=%v to %s %s %q in %q", user, want, attrs.Verb, attrs.Resource, attrs.Name, attrs.Namespace)
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &attrs}}
	testwait.For(t, 30*time.Second, what, func() bool {
		r, err := admin.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), review, metav1.CreateOptions{})
		return err == nil && r.Status.Allowed == want
	})
}

// WaitAllowed waits until user (of groups) may do verb on resource of API
// group apiGroup in namespace ("": cluster-wide): WaitAuthorized.
func WaitAllowed(t testing.TB, admin kubernetes.Interface, user string, groups []string, namespace, verb, apiGroup, resource string) {
	t.Helper()
	WaitAuthorized(t, admin, user, groups, authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Group: apiGroup, Resource: resource}, true)
}

// RuleAttributes is what rule's first verb, API group, resource and resource
// name allow in namespace.
func RuleAttributes(namespace string, rule rbacv1.PolicyRule) authorizationv1.ResourceAttributes {
	a := authorizationv1.ResourceAttributes{Namespace: namespace}
	if len(rule.Verbs) > 0 {
		a.Verb = rule.Verbs[0]
	}
	if len(rule.APIGroups) > 0 {
		a.Group = rule.APIGroups[0]
	}
	if len(rule.Resources) > 0 {
		a.Resource = rule.Resources[0]
	}
	if len(rule.ResourceNames) > 0 {
		a.Name = rule.ResourceNames[0]
	}
	return a
}

// SubjectUser is the user and groups a request of subject carries: a
// User's name, a member of a Group, a ServiceAccount's user name.
func SubjectUser(subject rbacv1.Subject) (string, []string) {
	switch subject.Kind {
	case rbacv1.GroupKind:
		return "any-member", []string{subject.Name}
	case rbacv1.ServiceAccountKind:
		return "system:serviceaccount:" + subject.Namespace + ":" + subject.Name, nil
	}
	return subject.Name, nil
}
