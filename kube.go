package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
)

// kubeSetup is the Kubernetes side of the wiring: the namespaces target (nil
// unless KUBE_NAMESPACES or KUBE_NAMESPACE_SELECTOR is set) and the leader
// elector (nil unless LEADER_ELECTION).
type kubeSetup struct {
	target  *kube.Namespaces
	elector *kube.Elector
}

// newKube builds the client and what uses it. Nothing here touches the network.
func newKube(cfg Config, log logrus.FieldLogger) (*kubeSetup, error) {
	if !cfg.Kube() && !cfg.LeaderElection {
		return nil, nil
	}
	restCfg, ns, err := kube.Config("rancher-ecr-credentials/" + buildVersion())
	if err != nil {
		return nil, err
	}
	routeKlog(log)
	client, err := kube.NewClient(restCfg)
	if err != nil {
		return nil, err
	}
	k := &kubeSetup{}
	if cfg.Kube() {
		k.target = kube.New(client, cfg.KubeSelection, cfg.KubeSecretName, cfg.KubeServiceAccounts)
		k.target.Logger = log
		if cfg.CattleURL != "" || cfg.Demo {
			k.target.ScopePrefix = "namespace/" // never the same name as a Rancher scope
		}
	}
	if cfg.LeaderElection {
		leaseNS := cfg.LeaderElectionNamespace
		if leaseNS == "" {
			leaseNS = ns
		}
		if leaseNS == "" {
			return nil, errors.New("LEADER_ELECTION_NAMESPACE: required outside a Pod when the kubeconfig context names no namespace")
		}
		k.elector = kube.NewElector(client, leaseNS, identity(), kube.DefaultLeaseTimes)
		k.elector.Logger = log
	}
	return k, nil
}

// identity names this replica in the Lease: the Pod name (the hostname), made
// unique against a restart under the same name.
func identity() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "_" + hex.EncodeToString(b)
}

// attach makes the refresher write into the selected namespaces as well as
// into what it had (Rancher scopes), and wake on a newly selected namespace.
func (k *kubeSetup) attach(r *refresher.Refresher) {
	if k == nil || k.target == nil {
		return
	}
	k.target.OnChange = r.Wake
	r.Discover = combineDiscover(r.Scopes, r.Discover, k.target.Discover)
	r.Scopes = nil
}

// combineDiscover finds the scopes of every part. A part that fails keeps the
// scopes it found last, so a cluster that cannot be listed does not stop
// Rancher being written, nor the reverse; the error is still reported.
func combineDiscover(static []refresher.Scope, parts ...func(context.Context) ([]refresher.Scope, error)) func(context.Context) ([]refresher.Scope, error) {
	var mu sync.Mutex
	last := make([][]refresher.Scope, len(parts))
	return func(ctx context.Context) ([]refresher.Scope, error) {
		mu.Lock()
		defer mu.Unlock()
		scopes := slices.Clone(static)
		var errs []error
		for i, p := range parts {
			if p == nil {
				continue
			}
			s, err := p(ctx)
			if err != nil {
				errs = append(errs, err)
			} else {
				last[i] = s
			}
			scopes = append(scopes, last[i]...)
		}
		return scopes, errors.Join(errs...)
	}
}

// runKube starts what the Kubernetes side runs beside the refresher, then
// runs write (the refresher's loop) and the ServiceAccount patcher: at once
// without leader election; only while leading with it, so that only the
// leader writes and losing the lease stops every write at once.
func (k *kubeSetup) run(ctx context.Context, r *refresher.Refresher, write func(context.Context) error) error {
	if k != nil && k.target != nil {
		k.target.Start(ctx)
	}
	lead := func(ctx context.Context) error {
		var wg sync.WaitGroup
		if k != nil && k.target != nil {
			wg.Go(func() { k.target.RunServiceAccounts(ctx) })
		}
		err := write(ctx)
		wg.Wait()
		return err
	}
	if k == nil || k.elector == nil {
		return lead(ctx)
	}
	// A lost lease must stop a run in flight now, not after the shutdown
	// grace: the new leader rewrites whatever this one did not finish.
	r.ShutdownTimeout = 0
	var werr error
	err := k.elector.Run(ctx, func(ctx context.Context) { werr = lead(ctx) })
	if errors.Is(err, kube.ErrLeaseLost) {
		return &exitError{code: 1, err: fmt.Errorf("%w; exiting so this replica restarts as a follower", err)}
	}
	return errors.Join(err, werr)
}

// electedState adds this replica's leader-election role to /readyz.
type electedState struct {
	*refresher.Refresher
	e *kube.Elector
}

func (s electedState) Role(now time.Time) (role, leader string, fresh bool) { return s.e.Role(now) }
