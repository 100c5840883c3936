package app

import (
	"strconv"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// The settings of how fast the daemon writes (issue 22, item 5). Their
// defaults are measured: BENCHMARKS.md, "Rate and run length".
const (
	envKubeQPS          = "KUBE_API_QPS"
	envKubeBurst        = "KUBE_API_BURST"
	envWriteConcurrency = "WRITE_CONCURRENCY"

	// MinKubeQPS, MaxKubeQPS and MaxWriteConcurrency bound what the settings
	// take: beyond them is a typo, not a plan.
	MinKubeQPS          = 1
	MaxKubeQPS          = 10000
	MaxWriteConcurrency = 256
)

// limitsSection is the settings of rate and concurrency, every mode's.
func limitsSection() setup.Section {
	return setup.Section{
		Title: "Rate and concurrency (every mode)",
		Settings: []setup.Setting{
			{Env: envWriteConcurrency, Default: strconv.Itoa(refresher.DefaultWorkers),
				Usage: "how many scopes (namespaces, projects, environments) a run writes at once, 1-" + strconv.Itoa(MaxWriteConcurrency) + "; scopes that watches push (a new namespace) are written beside a run by as many again"},
			{Env: envKubeQPS, Default: strconv.Itoa(kubeapi.DefaultQPS),
				Usage: "Kubernetes API requests per second, at most (client side; the API server's Priority and Fairness may slow it further with 429 Retry-After, which is honoured)"},
			{Env: envKubeBurst, DefaultHelp: "2 × " + envKubeQPS, Usage: "Kubernetes API requests allowed at once above that rate; at least " + envKubeQPS},
		},
	}
}

// Limits are the settings of rate and concurrency, checked.
type Limits struct {
	// WriteConcurrency is the refresher's Workers.
	WriteConcurrency int
	// KubeQPS and KubeBurst are the Kubernetes client's rate limit.
	KubeQPS   float32
	KubeBurst int
}

// parseLimits reads and checks the settings of rate and concurrency,
// reporting every problem through v.
func parseLimits(v setup.Values) Limits {
	var l Limits
	if n, err := strconv.Atoi(v.Get(envWriteConcurrency)); err != nil || n < 1 || n > MaxWriteConcurrency {
		v.Problem(envWriteConcurrency, "%q is not a number of scopes from 1 to %d", v.Get(envWriteConcurrency), MaxWriteConcurrency)
	} else {
		l.WriteConcurrency = n
	}
	q, err := strconv.ParseFloat(v.Get(envKubeQPS), 32)
	if err != nil || !(q >= MinKubeQPS && q <= MaxKubeQPS) { // NaN fails both
		v.Problem(envKubeQPS, "%q is not a rate of %d to %d requests per second", v.Get(envKubeQPS), MinKubeQPS, MaxKubeQPS)
		return l
	}
	l.KubeQPS = float32(q)
	l.KubeBurst = max(1, int(2*q))
	if v.IsSet(envKubeBurst) {
		b, err := strconv.Atoi(v.Get(envKubeBurst))
		switch {
		case err != nil || b < 1:
			v.Problem(envKubeBurst, "%q is not a whole number of requests of 1 or more", v.Get(envKubeBurst))
		case float64(b) < q:
			v.Problem(envKubeBurst, "%d is below %s %s: set it to at least that (or leave it unset for twice %s)", b, envKubeQPS, v.Get(envKubeQPS), envKubeQPS)
		default:
			l.KubeBurst = b
		}
	}
	return l
}
