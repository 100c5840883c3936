package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/norman"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/projectsecret"
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

// newRancher2 wires the Rancher 2.x targets of client (nil for Rancher 1.x).
// Nothing here touches the network: the server version is read at the first run.
func newRancher2(cfg Config, client *rancherapi.Client, log logrus.FieldLogger, reg prometheus.Registerer) (*rancher2, error) {
	if !client.Rancher2() {
		return nil, nil
	}
	cluster, err := projectsecret.NewCluster(projectsecret.ProxyConfig(client, client.UserAgent), true)
	if err != nil {
		return nil, err
	}
	expiry := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rancher_ecr_credentials_rancher_token_expiry_timestamp_seconds",
		Help: "When the Rancher API token in use expires (Unix seconds); 0 when it does not expire or its expiry cannot be read.",
	})
	if err := reg.Register(expiry); err != nil {
		return nil, err
	}
	return &rancher2{
		chooser: &projectsecret.Chooser{Mode: cfg.SecretAPI, Version: client.GetServerVersion, Log: log},
		cluster: cluster,
		watch: &projectsecret.TokenWatch{Client: client, Log: log, Every: tokenCheckInterval, OnExpiry: func(at time.Time) {
			if at.IsZero() {
				expiry.Set(0)
				return
			}
			expiry.Set(float64(at.Unix()))
		}},
	}, nil
}

// target is project c's Target: /v3 or Kubernetes, as the chooser decides.
func (r *rancher2) target(c *rancherapi.Client) refresher.Target {
	v3 := &norman.Target{Store: &rancherapi.Norman{Client: c}}
	ps := &projectsecret.Target{Cluster: r.cluster, Project: c.ProjectID()}
	return r.watch.Target(r.chooser.Target(v3, ps))
}

// newInClusterScopes writes project-scoped Secrets from inside Rancher's local
// cluster: the ServiceAccount's in-cluster configuration (else KUBECONFIG), the
// projects named in RANCHER_PROJECTS, or every project of the projects CRD.
func newInClusterScopes(cfg Config, log logrus.FieldLogger) ([]refresher.Scope, func(context.Context) ([]refresher.Scope, error), error) {
	kcfg, _, err := kube.Config("rancher-ecr-credentials/" + buildVersion())
	if err != nil {
		return nil, nil, fmt.Errorf("RANCHER_PROJECTS without CATTLE_URL writes through the local cluster's Kubernetes API: %w", err)
	}
	routeKlog(log)
	cluster, err := projectsecret.NewCluster(kcfg, false)
	if err != nil {
		return nil, nil, err
	}
	log.WithField("kubernetes_api", kcfg.Host).Info("Rancher 2.x projects are written as project-scoped Secrets through the local cluster's Kubernetes API (no CATTLE_URL)")
	scope := func(id string) refresher.Scope {
		return refresher.Scope{Name: id, Target: &projectsecret.Target{Cluster: cluster, Project: id}}
	}
	if cfg.AllProjects {
		return nil, func(ctx context.Context) ([]refresher.Scope, error) {
			ids, err := cluster.ListProjects(ctx)
			if err != nil {
				return nil, err
			}
			scopes := make([]refresher.Scope, 0, len(ids))
			for _, id := range ids {
				scopes = append(scopes, scope(id))
			}
			return scopes, nil
		}, nil
	}
	scopes := make([]refresher.Scope, 0, len(cfg.RancherProjects))
	for _, id := range cfg.RancherProjects {
		scopes = append(scopes, scope(id))
	}
	return scopes, nil, nil
}
