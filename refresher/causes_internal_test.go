package refresher

import "testing"

// A cause reads the same in every scope once the scope's name is out of it,
// and only a whole name is taken out.
func TestCauseText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ text, scope, want string }{
		{`cannot create resource "secrets" in the namespace "team-a"`, "team-a", `cannot create resource "secrets" in the namespace "…"`},
		{`h in scope namespace/team-a: secret team-a/ecr-credentials is not ours`, "namespace/team-a", `h in scope …: secret …/ecr-credentials is not ours`},
		{`secret a/ecr-a exists; namespace a`, "a", `secret …/ecr-a exists; namespace …`},
		{`secrets "ecr-credentials" is forbidden`, "ecr", `secrets "ecr-credentials" is forbidden`},
		{`team-a-2 and team-a`, "team-a", `team-a-2 and …`},
		{`no name here`, "", `no name here`},
	} {
		if got := causeText(tc.text, tc.scope); got != tc.want {
			t.Errorf("causeText(%q, %q) = %q, want %q", tc.text, tc.scope, got, tc.want)
		}
	}
}
