package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/sirupsen/logrus"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logging"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/leader"
)

// cluster is the Kubernetes cluster the daemon runs in (or KUBECONFIG names),
// its configuration loaded once, on first use, for every kind and the Lease.
type cluster struct {
	userAgent string
	limits    Limits
	log       logrus.FieldLogger
	// routeKlog sends client-go's log lines (klog) to log. klog's logger is
	// process-wide: only the process's own run sets it (a test process runs
	// many daemons, whose informers would race on it).
	routeKlog bool

	once sync.Once
	cfg  *rest.Config
	ns   string
	err  error
}

// config is setup.Deps.Kubernetes: the configuration and the namespace it is in.
func (c *cluster) config() (*rest.Config, string, error) {
	c.once.Do(func() {
		c.cfg, c.ns, c.err = kubeapi.Config(kubeapi.Options{UserAgent: c.userAgent, QPS: c.limits.KubeQPS, Burst: c.limits.KubeBurst})
		if c.err == nil && c.routeKlog {
			logging.RouteKlog(c.log)
		}
	})
	return c.cfg, c.ns, c.err
}

// newElector is the Lease election of LEADER_ELECTION, nil without it.
// Nothing here touches the network.
func newElector(cfg Config, c *cluster, log logrus.FieldLogger) (*leader.Elector, error) {
	if !cfg.LeaderElection {
		return nil, nil
	}
	restCfg, ns, err := c.config()
	if err != nil {
		return nil, fmt.Errorf("LEADER_ELECTION: the Lease lives in a Kubernetes cluster: %w", err)
	}
	if cfg.LeaderElectionNamespace != "" {
		ns = cfg.LeaderElectionNamespace
	}
	if ns == "" {
		return nil, errors.New("LEADER_ELECTION_NAMESPACE: required outside a Pod when the kubeconfig context names no namespace")
	}
	client, err := kubeapi.New(restCfg)
	if err != nil {
		return nil, err
	}
	e := leader.New(client, ns, identity(), leader.DefaultTimes)
	e.Logger = log
	return e, nil
}

// identity names this replica in the Lease: the Pod name (the hostname), made
// unique against a restart under the same name.
func identity() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "_" + hex.EncodeToString(b)
}
