package tenantrole_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

func TestParseAllowList(t *testing.T) {
	t.Parallel()
	good := []string{"arn:aws:iam::111122223333:role/team-a", "arn:aws:iam::111122223333:role/team-*",
		"arn:aws:iam::*:role/ecr-pull", "arn:aws-cn:iam::111122223333:role/path/to/r", "arn:*:iam::111122223333:role/x?"}
	a, errs := tenantrole.ParseAllowList(good)
	if len(errs) > 0 || len(a.Patterns()) != len(good) {
		t.Fatalf("good entries: %v, %v", a.Patterns(), errs)
	}
	for _, bad := range []string{"*", "team-a", "arn:aws:iam::111122223333:user/bob", "arn:aws:iam::111122223333:role/",
		"arn:aws:s3:::bucket", "arn:aws:iam:us-east-1:111122223333:role/x"} {
		_, errs := tenantrole.ParseAllowList([]string{bad})
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), bad) || !strings.Contains(errs[0].Error(), "arn:aws:iam::111122223333:role/team-") {
			t.Errorf("ParseAllowList(%q) = %v, want one error naming it and the form", bad, errs)
		}
	}
	if _, errs := tenantrole.ParseAllowList([]string{"arn:aws:iam::111122223333:role/[a"}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "role/[a\" is not a valid glob") {
		t.Errorf("a bad glob: %v", errs)
	}
	if got := (tenantrole.AllowList{}).Broad(); len(got) != 0 {
		t.Errorf("Broad of nothing = %v", got)
	}
	wide, _ := tenantrole.ParseAllowList([]string{"arn:aws:iam::111122223333:role/*", "arn:aws:iam::111122223333:role/team-*"})
	if got := wide.Broad(); len(got) != 1 || got[0] != "arn:aws:iam::111122223333:role/*" {
		t.Errorf("Broad = %v, want the role/* entry", got)
	}
}

func TestAllowList_Check(t *testing.T) {
	t.Parallel()
	a, _ := tenantrole.ParseAllowList([]string{"arn:aws:iam::111122223333:role/team-*", "arn:aws:iam::444455556666:role/ci"})
	for _, role := range []string{"arn:aws:iam::111122223333:role/team-a", "arn:aws:iam::444455556666:role/ci"} {
		if err := a.Check(role); err != nil {
			t.Errorf("Check(%s) = %v, want allowed", role, err)
		}
	}
	tests := []struct {
		name  string
		list  tenantrole.AllowList
		role  string
		parts []string
	}{
		{"NotInList", a, "arn:aws:iam::111122223333:role/admin", []string{tenantrole.Annotation, "arn:aws:iam::111122223333:role/admin",
			"AWS_ALLOWED_ROLE_ARNS (arn:aws:iam::111122223333:role/team-*, arn:aws:iam::444455556666:role/ci) does not allow",
			"no credential at all (never the daemon's own)", "adds the role (or a glob matching it) to AWS_ALLOWED_ROLE_ARNS"}},
		// A * never crosses a /: a role under a path is not team-*.
		{"GlobStopsAtSlash", a, "arn:aws:iam::111122223333:role/x/team-a", []string{"does not allow"}},
		{"OtherAccount", a, "arn:aws:iam::999999999999:role/team-a", []string{"does not allow"}},
		{"EmptyList", tenantrole.AllowList{}, "arn:aws:iam::111122223333:role/team-a", []string{"AWS_ALLOWED_ROLE_ARNS is empty, so no tenant role is allowed",
			"AWS_ALLOWED_ROLE_ARNS=arn:aws:iam::111122223333:role/team-a", "no credential at all"}},
		{"NotAnARN", a, "team-a", []string{`holds "team-a", which is not an IAM role ARN`, "arn:aws:iam::111122223333:role/team-a", "no credential at all"}},
		// A glob in the annotation is no role: it matches only itself.
		{"GlobAsRole", a, "arn:aws:iam::111122223333:role/team-*", []string{"not an IAM role ARN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.list.Check(tt.role)
			if err == nil {
				t.Fatalf("Check(%s) allowed", tt.role)
			}
			for _, p := range tt.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("refusal %q lacks %q", err, p)
				}
			}
			var re *tenantrole.RefusedError
			if !errors.As(err, &re) || re.Temporary() || re.ErrorCode() != "RoleNotAllowed" || re.Role != tt.role {
				t.Errorf("refusal %#v: want a permanent RefusedError for the role", err)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	if got := tenantrole.Identity("  arn:aws:iam::111122223333:role/a \n"); got != "arn:aws:iam::111122223333:role/a" {
		t.Errorf("Identity trims: %q", got)
	}
	if got := tenantrole.Identity(" "); got != "" {
		t.Errorf("Identity(blank) = %q, want the daemon's own", got)
	}
	if got := tenantrole.Identity(strings.Repeat("x", 100_000)); len(got) > tenantrole.MaxIdentity+3 {
		t.Errorf("Identity of 100 kB is %d bytes", len(got))
	}
}

func TestSessionName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", 63)
	for in, want := range map[string]string{
		"team-a":            "team-a",
		"namespace/team-a":  "namespace-team-a",
		"c-abcde:p-fghij":   "c-abcde-p-fghij",
		"a":                 "a-",
		"":                  "rancher-ecr-credentials",
		"ünïcode ns":        "-n-code-ns",
		"namespace/" + long: "-" + long,
		"x+=,.@_-y":         "x+=,.@_-y",
	} {
		if got := tenantrole.SessionName(in); got != want {
			t.Errorf("SessionName(%q) = %q, want %q", in, got, want)
		}
		if got := tenantrole.SessionName(in); len(got) < 2 || len(got) > 64 {
			t.Errorf("SessionName(%q) is %d characters", in, len(got))
		}
	}
}
