// Package tenantrole is the AWS identity per tenant: a namespace or a Rancher
// 2.x project annotated rancher-ecr-credentials/role-arn gets credentials
// obtained by assuming that role, never the daemon's own. It holds what
// decides whether a tenant may name a role (AWS_ALLOWED_ROLE_ARNS), the
// refusal when it may not, and the Resolver that turns an allowed role into
// the refresher's sources: one cached STS session per role, one ECR source
// per region over it. See README.md, "Security model".
package tenantrole

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/redact"
)

const (
	// Annotation, on a namespace or a Rancher 2.x project, names the IAM role
	// whose tokens it gets.
	Annotation = "rancher-ecr-credentials/role-arn"
	// EnvAllowed is the setting listing the roles (or globs) a tenant may name.
	EnvAllowed = "AWS_ALLOWED_ROLE_ARNS"
	// MaxIdentity bounds an identity taken from an annotation (an IAM ARN is
	// at most 2,048 characters): what a tenant writes there is kept in memory
	// and logged, so it is cut.
	MaxIdentity = 2048
)

// roleARN is what an IAM role ARN looks like: a partition, a 12-digit
// account, a path and a name of IAM's characters
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html).
var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)

// Identity is the refresher identity an annotation value names: the value
// trimmed, "" (the daemon's own) when empty, cut to MaxIdentity. Whatever it
// holds, the allow list decides; nothing here makes it the daemon's own.
func Identity(annotation string) string {
	v := strings.TrimSpace(annotation)
	if len(v) > MaxIdentity {
		v = strings.ToValidUTF8(v[:MaxIdentity], "") + "…"
	}
	return v
}

// IdentityOf is the identity an object's annotations name (Annotation), as
// Identity gives it: "" for the daemon's own.
func IdentityOf(annotations map[string]string) string { return Identity(annotations[Annotation]) }

// AllowList is AWS_ALLOWED_ROLE_ARNS: the roles a tenant may name, as ARNs
// or path.Match globs (arn:aws:iam::111122223333:role/team-*; a * never
// crosses a /). Empty allows none.
type AllowList struct {
	patterns []string
}

// ParseAllowList checks each entry: an IAM role ARN, globs allowed in any
// part. It returns the list of the good entries and one error per bad one,
// naming it.
func ParseAllowList(entries []string) (AllowList, []error) {
	var a AllowList
	var errs []error
	for _, e := range entries {
		if err := checkPattern(e); err != nil {
			errs = append(errs, fmt.Errorf("%q %v", redact.Bounded(e, 200), err))
			continue
		}
		a.patterns = append(a.patterns, e)
	}
	return a, errs
}

func checkPattern(e string) error {
	parts := strings.SplitN(e, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || parts[3] != "" || !strings.HasPrefix(parts[5], "role/") || len(parts[5]) == len("role/") {
		return errors.New("is not an IAM role ARN or glob such as arn:aws:iam::111122223333:role/team-a or arn:aws:iam::111122223333:role/team-*")
	}
	if _, err := path.Match(e, ""); err != nil {
		return fmt.Errorf("is not a valid glob: %v", err)
	}
	return nil
}

// Patterns returns the entries, as given.
func (a AllowList) Patterns() []string { return append([]string(nil), a.patterns...) }

// Broad returns the entries that allow every role of an account or more (a
// bare * for the role): any tenant may then name any such role, another
// team's included.
func (a AllowList) Broad() []string {
	var out []string
	for _, p := range a.patterns {
		if strings.HasSuffix(p, ":role/*") {
			out = append(out, p)
		}
	}
	return out
}

// Allows reports whether role is a role ARN some entry matches.
func (a AllowList) Allows(role string) bool {
	if !roleARN.MatchString(role) {
		return false
	}
	for _, p := range a.patterns {
		if ok, _ := path.Match(p, role); ok {
			return true
		}
	}
	return false
}

// Check returns nil when a tenant may name role, else the refusal: what the
// annotation names, why it is refused, that the scope gets no credential at
// all, and the fix. The refresher prefixes it with the scope (the namespace
// or project) it fails.
func (a AllowList) Check(role string) error {
	if a.Allows(role) {
		return nil
	}
	const none = "; it gets no credential at all (never the daemon's own) until "
	shown := redact.Bounded(role, 300)
	switch {
	case !roleARN.MatchString(role):
		return &RefusedError{Role: role, msg: fmt.Sprintf("annotation %s holds %q, which is not an IAM role ARN such as arn:aws:iam::111122223333:role/team-a%s"+
			"the annotation names a role %s allows, or is removed (the daemon's own identity)", Annotation, shown, none, EnvAllowed)}
	case len(a.patterns) == 0:
		return &RefusedError{Role: role, msg: fmt.Sprintf("annotation %s names role %s, but %s is empty, so no tenant role is allowed%s"+
			"the daemon's administrator allows the role (%s=%s, or a glob matching it), or the annotation is removed (the daemon's own identity)",
			Annotation, shown, EnvAllowed, none, EnvAllowed, shown)}
	}
	return &RefusedError{Role: role, msg: fmt.Sprintf("annotation %s names role %s, which %s (%s) does not allow%s"+
		"the daemon's administrator adds the role (or a glob matching it) to %s, or the annotation names an allowed role or is removed (the daemon's own identity)",
		Annotation, shown, EnvAllowed, a.shown(), none, EnvAllowed)}
}

// shown lists the entries for a refusal, a few at most.
func (a AllowList) shown() string {
	const most = 5
	if len(a.patterns) <= most {
		return strings.Join(a.patterns, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(a.patterns[:most], ", "), len(a.patterns)-most)
}

// RefusedError is the refusal of a role a tenant named. It is permanent:
// nothing changes it but the annotation or the allow list (a restart).
type RefusedError struct {
	// Role is what the annotation named.
	Role string
	msg  string
}

func (e *RefusedError) Error() string { return e.msg }

// Temporary is false: retrying will not allow the role.
func (e *RefusedError) Temporary() bool { return false }

// ErrorCode names the refusal in metrics.
func (e *RefusedError) ErrorCode() string { return "RoleNotAllowed" }
