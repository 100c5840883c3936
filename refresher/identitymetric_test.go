package refresher_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Scopes are counted per AWS identity and state, so an operator can alert
// per tenant role: the daemon's own identity is "", an allowed role its ARN,
// and every refused one "refused" (a tenant could name any number of roles:
// they never become label values).
func TestRefresher_ScopesPerIdentity(t *testing.T) {
	t.Parallel()
	own := sourceA()
	e := newEnv(t, []refresher.Source{own})
	reg := prometheus.NewRegistry()
	e.r.Metrics = refresher.NewMetrics(reg)
	reg.MustRegister(e.r.Collector())
	tenants(e, []string{hostA}, roleA)
	for i, id := range []string{"", "", roleA, roleA, "arn:aws:iam::999999999999:role/x", "arn:aws:iam::999999999999:role/y"} {
		e.r.AddScope(refresher.Scope{Name: string(rune('a' + i)), Group: "namespaces", Identity: id, Target: &fakeTarget{}})
	}
	_ = e.r.RunOnce(t.Context())
	want := `
# HELP rancher_ecr_credentials_identity_scopes Scopes by the AWS identity whose tokens they hold ("" the daemon's own, a tenant role's ARN, or "refused" for every role AWS_ALLOWED_ROLE_ARNS does not allow) and state: fresh, failing, pending.
# TYPE rancher_ecr_credentials_identity_scopes gauge
rancher_ecr_credentials_identity_scopes{identity="",state="failing"} 0
rancher_ecr_credentials_identity_scopes{identity="",state="fresh"} 2
rancher_ecr_credentials_identity_scopes{identity="",state="pending"} 0
rancher_ecr_credentials_identity_scopes{identity="` + roleA + `",state="failing"} 0
rancher_ecr_credentials_identity_scopes{identity="` + roleA + `",state="fresh"} 2
rancher_ecr_credentials_identity_scopes{identity="` + roleA + `",state="pending"} 0
rancher_ecr_credentials_identity_scopes{identity="refused",state="failing"} 2
rancher_ecr_credentials_identity_scopes{identity="refused",state="fresh"} 0
rancher_ecr_credentials_identity_scopes{identity="refused",state="pending"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rancher_ecr_credentials_identity_scopes"); err != nil {
		t.Error(err)
	}
}
