package tenantrole

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
)

// Metrics are the per-role series (README.md, "HTTP endpoints"): label values
// are allowed role ARNs and regions, never a secret, so the series are
// bounded by the roles AWS_ALLOWED_ROLE_ARNS allows and scopes name. A
// refused role is never a label value (a tenant could name any number).
type Metrics struct {
	assumes  *prometheus.CounterVec
	fetchOK  *prometheus.GaugeVec
	refusals prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		assumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rancher_ecr_credentials_role_assume_total",
			Help: "STS AssumeRole calls for a tenant role (annotation rancher-ecr-credentials/role-arn), by result: success, or the AWS error code. One per role per session, whatever the number of namespaces naming it.",
		}, []string{"role", "result"}),
		fetchOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rancher_ecr_credentials_role_fetch_success",
			Help: "1 when the last ECR token fetch of a tenant role in a region succeeded, 0 when it failed (STS or ECR denied the role, or ECR failed).",
		}, []string{"role", "region"}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rancher_ecr_credentials_role_refusals_total",
			Help: "Tenant roles refused because AWS_ALLOWED_ROLE_ARNS does not allow them (or the annotation holds no role ARN), counted when a scope first names one; those scopes get no credential.",
		}),
	}
	reg.MustRegister(m.assumes, m.fetchOK, m.refusals)
	return m
}

func (m *Metrics) assumed(role string, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = ecrsource.Code(err)
		if result == "" {
			result = "error"
		}
	}
	m.assumes.WithLabelValues(role, result).Inc()
}

func (m *Metrics) fetched(role, region string, ok bool) {
	if m == nil {
		return
	}
	v := 0.0
	if ok {
		v = 1
	}
	m.fetchOK.WithLabelValues(role, region).Set(v)
}

func (m *Metrics) refused() {
	if m != nil {
		m.refusals.Inc()
	}
}
