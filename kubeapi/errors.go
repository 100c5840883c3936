package kubeapi

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/redact"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Error is a refused or failed API call, named as RBAC names it: verb,
// resource, namespace and object. It never carries a secret: only names and
// the server's own words bounded by redact.Text (a real API server
// echoes names, never data; a hostile proxy in front of it might).
type Error struct {
	Verb, Resource, Namespace, Name string
	// Verbs are the verbs this daemon needs on Resource, for the RBAC hint.
	Verbs []string
	Err   error
}

func (e *Error) Error() string {
	obj := e.Resource
	if e.Name != "" {
		obj = fmt.Sprintf("%s %q", e.Resource, e.Name)
	}
	where := "in namespace " + e.Namespace
	if e.Namespace == "" {
		where = "cluster-wide"
	}
	if apierrors.IsForbidden(e.Err) {
		grant := fmt.Sprintf("grant verbs [%s] on %s in that namespace (Role/ClusterRole with a RoleBinding)", strings.Join(e.Verbs, " "), e.Resource)
		if e.Namespace == "" {
			grant = fmt.Sprintf("grant verbs [%s] on %s (ClusterRole with a ClusterRoleBinding)", strings.Join(e.Verbs, " "), e.Resource)
		}
		return fmt.Sprintf("%s is forbidden: cannot %s %s %s: %s; the API server said: %s", obj, e.Verb, e.Resource, where, grant, redact.Text(e.Err.Error()))
	}
	return fmt.Sprintf("%s %s %s: %s", e.Verb, obj, where, redact.Text(e.Err.Error()))
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary tells the refresher whether retrying soon can help: a throttle, a
// timeout, a conflict or a server error can; a refusal or a bad object cannot.
func (e *Error) Temporary() bool {
	err := e.Err
	switch {
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err), apierrors.IsConflict(err),
		apierrors.IsUnexpectedServerError(err):
		return true
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return st.Status().Code >= 500
	}
	return true // not an API answer: the network, a context
}

var _ interface{ Temporary() bool } = (*Error)(nil)

// Wrap names a failed call (verb, resource, namespace, object, and the verbs
// this daemon needs there, for the RBAC hint); nil stays nil. A refusal is
// permanent: retrying soon will not add a grant.
func Wrap(verb, resource, namespace, name string, verbs []string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Verb: verb, Resource: resource, Namespace: namespace, Name: name, Verbs: verbs, Err: err}
	if !e.Temporary() {
		return refresher.Permanent(e)
	}
	return e
}
