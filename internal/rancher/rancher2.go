package rancher

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/norman"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/projectsecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

// tokenCheckInterval is how often the Rancher API token's expiry is read again.
const tokenCheckInterval = time.Hour

// rancher2 is what every Rancher 2.x project shares: the choice between /v3
// and Kubernetes Secrets (RANCHER_SECRET_API), the local cluster reached
// through Rancher's proxy, and the watch on the API token's expiry.
type rancher2 struct {
	chooser *projectsecret.Chooser
	cluster *projectsecret.Cluster
	watch   *projectsecret.TokenWatch
}

// newRancher2 wires what the Rancher 2.x projects of n share. Nothing here
// touches the network: the server version is read at the first run.
func newRancher2(c config, n *rancherapi.Norman, d setup.Deps) (*rancher2, error) {
	cluster, err := projectsecret.NewCluster(projectsecret.ProxyConfig(n.Client, kubeapi.Options{UserAgent: d.UserAgent, QPS: d.KubeQPS, Burst: d.KubeBurst}), true)
	if err != nil {
		return nil, err
	}
	expiry := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rancher_ecr_credentials_rancher_token_expiry_timestamp_seconds",
		Help: "When the Rancher API token in use expires (Unix seconds); 0 when it does not expire or its expiry cannot be read.",
	})
	if err := d.Metrics.Register(expiry); err != nil {
		return nil, err
	}
	return &rancher2{
		chooser: &projectsecret.Chooser{Mode: c.secretAPI, Version: n.GetServerVersion, Log: d.Log},
		cluster: cluster,
		watch: &projectsecret.TokenWatch{Client: n.Client, Log: d.Log, Every: tokenCheckInterval, OnExpiry: func(at time.Time) {
			if at.IsZero() {
				expiry.Set(0)
				return
			}
			expiry.Set(float64(at.Unix()))
		}},
	}, nil
}

// target is project n's Target: /v3 or Kubernetes, as the chooser decides.
func (r *rancher2) target(n *rancherapi.Norman) refresher.Target {
	v3 := &norman.Target{Store: n}
	ps := &projectsecret.Target{Cluster: r.cluster, Project: n.ProjectID()}
	return r.watch.Target(r.chooser.Target(v3, ps))
}

// inClusterPart writes project-scoped Secrets from inside Rancher's local
// cluster: the ServiceAccount's in-cluster configuration (else KUBECONFIG), the
// projects named in RANCHER_PROJECTS, or every project of the projects CRD.
func inClusterPart(c config, d setup.Deps) (*setup.Part, error) {
	kcfg, _, err := d.Kubernetes()
	if err != nil {
		return nil, fmt.Errorf("RANCHER_PROJECTS without CATTLE_URL writes through the local cluster's Kubernetes API: %w", err)
	}
	cluster, err := projectsecret.NewCluster(kcfg, false)
	if err != nil {
		return nil, err
	}
	scope := func(id string) refresher.Scope {
		return refresher.Scope{Name: id, Target: &projectsecret.Target{Cluster: cluster, Project: id}}
	}
	p := &setup.Part{Fields: logrus.Fields{"cattle_url": "(none: in-cluster Kubernetes API)", "kubernetes_api": kcfg.Host,
		"rancher_projects": projectsField(c), "rancher_secret_api": projectsecret.ModeKubernetes}}
	if c.all {
		disc := &discovery{what: "RANCHER_PROJECTS=all: the local cluster holds no Rancher project (projects.management.cattle.io)"}
		p.Discover = disc.wrap(func(ctx context.Context) ([]refresher.Scope, error) {
			projects, err := cluster.ListProjects(ctx)
			if err != nil {
				return nil, err
			}
			scopes := make([]refresher.Scope, 0, len(projects))
			for _, pr := range projects {
				sc := scope(pr.ID)
				sc.Group, sc.Identity = AllProjectsGroup, tenantrole.IdentityOf(pr.Annotations)
				scopes = append(scopes, sc)
			}
			return scopes, nil
		})
		p.Empty = disc.empty
		return p, nil
	}
	named := &namedProjects{ids: c.projects, scope: scope, read: cluster.Annotations, log: d.Log}
	p.Discover = named.discover
	return p, nil
}
