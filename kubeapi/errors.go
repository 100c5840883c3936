package kubeapi

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Error is a refused or failed API call, named as RBAC names it: verb,
// resource (with its API group), namespace and object, and, for a refusal,
// the grant that would allow it. Every call of a Client returns its failures
// as an *Error. It never carries a secret: only names and the server's own
// words, bounded, on one line, with secret-looking runs removed (a real API
// server echoes names, never data; a hostile proxy in front of it might).
type Error struct {
	// Verb is the RBAC verb of the call (get, list, watch, create, update,
	// patch).
	Verb string
	// Resource is the resource's plural name, Group its API group ("" for
	// core/v1).
	Resource, Group string
	// Namespace is "" for a cluster-scoped resource or a call across all
	// namespaces; Name is "" for list and watch.
	Namespace, Name string
	// Verbs are the verbs the caller needs on Resource, for the RBAC hint
	// (Typed.Needs; the failed verb alone when not set).
	Verbs []string
	// Err is the API server's answer (an apierrors.APIStatus) or the network
	// failure; apierrors.IsForbidden and friends see it through Unwrap.
	Err error
}

// GroupResource is Resource qualified by its group, as RBAC rules and the
// API server's messages spell it: "secrets", "leases.coordination.k8s.io".
func (e *Error) GroupResource() string {
	if e.Group == "" {
		return e.Resource
	}
	return e.Resource + "." + e.Group
}

// Error says what was refused or failed, and for a refusal the grant to add.
func (e *Error) Error() string {
	res := e.GroupResource()
	obj := res
	if e.Name != "" {
		obj = fmt.Sprintf("%s %q", res, e.Name)
	}
	where := "in namespace " + e.Namespace
	if e.Namespace == "" {
		where = "cluster-wide"
	}
	said := safeText(e.Err.Error())
	switch {
	case apierrors.IsForbidden(e.Err):
		return fmt.Sprintf("%s is forbidden: cannot %s %s %s: %s; the API server said: %s", obj, e.Verb, res, where, e.Grant(), said)
	case apierrors.IsUnauthorized(e.Err):
		return fmt.Sprintf("%s %s %s: the API server did not accept the credentials (401 Unauthorized): the ServiceAccount token, or the kubeconfig's token, certificate or exec plugin, is not valid for this cluster; the API server said: %s",
			e.Verb, obj, where, said)
	}
	return fmt.Sprintf("%s %s %s: %s", e.Verb, obj, where, said)
}

// Grant names the RBAC rule that would allow the call: its verbs, the
// resource qualified by its API group as kubectl and RBAC spell it
// ("leases.coordination.k8s.io"), and where to grant it. The wording is the
// one README.md and docs/kubernetes.md show.
func (e *Error) Grant() string {
	verbs := e.Verbs
	if len(verbs) == 0 {
		verbs = []string{e.Verb}
	}
	if e.Namespace == "" {
		return fmt.Sprintf("grant verbs [%s] on %s (ClusterRole with a ClusterRoleBinding)", strings.Join(verbs, " "), e.GroupResource())
	}
	return fmt.Sprintf("grant verbs [%s] on %s in that namespace (Role/ClusterRole with a RoleBinding)", strings.Join(verbs, " "), e.GroupResource())
}

// Unwrap returns the API server's answer or the network failure.
func (e *Error) Unwrap() error { return e.Err }

// Temporary tells a caller whether retrying soon can help: a throttle, a
// timeout, a conflict or a server error can; a refusal, a missing object or
// a bad object cannot.
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

// callError names a failed call; nil stays nil.
func callError(verb, resource, group, namespace, name string, verbs []string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Verb: verb, Resource: resource, Group: group, Namespace: namespace, Name: name, Verbs: verbs, Err: err}
}

// secretLooking is a run of base64 or hex long enough to be a token or a
// password; Kubernetes names (at most 63 characters of [a-z0-9-.]) never
// match, as "-" and "." are not in the class.
var secretLooking = regexp.MustCompile(`[A-Za-z0-9+/=_]{32,}`)

// maxServerText bounds the server's words kept in an Error: an API server's
// RBAC message, which names the user, the verb, the resource and the
// namespace, fits.
const maxServerText = 400

// safeText keeps a server's text fit for a log line: one line, printable,
// secret-looking runs replaced, at most maxServerText bytes.
func safeText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(s, ""))
	s = strings.TrimSpace(secretLooking.ReplaceAllString(s, "[redacted]"))
	if len(s) > maxServerText {
		s = strings.ToValidUTF8(s[:maxServerText], "") + "…"
	}
	return s
}
