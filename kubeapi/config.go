package kubeapi

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// DefaultQPS and DefaultBurst are the client's rate limit when Options
	// leave them zero: high enough that the API server, not this client, sets
	// the pace. client-go's own default (5 QPS, burst 10) makes 1,000
	// namespace writes take 200 s; 200 QPS made 10,000 take 48 s, 3 times the
	// server's own floor, and kept a new namespace's write waiting in the
	// client's queue behind the bulk refresh (BENCHMARKS.md, "Rate and run
	// length"). Where the server has no room, its Priority and Fairness queues
	// this client against everything else and answers 429 with Retry-After,
	// which the client honours
	// (https://kubernetes.io/docs/concepts/cluster-administration/flow-control/);
	// KUBE_API_QPS lowers this on a shared server.
	DefaultQPS   = 2000
	DefaultBurst = 4000

	// serviceAccountDir is where the kubelet mounts a Pod's ServiceAccount
	// (https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/).
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Options are what this daemon sets on every client configuration.
type Options struct {
	// UserAgent names the daemon and its version in the API server's logs.
	UserAgent string
	// QPS and Burst are the client-side rate limit, shared by every request
	// of one Client (0: DefaultQPS, DefaultBurst).
	QPS   float32
	Burst int
}

// Validate names what is wrong with o.
func (o Options) Validate() error {
	var errs []error
	if q := float64(o.QPS); q < 0 || math.IsNaN(q) || math.IsInf(q, 0) {
		errs = append(errs, fmt.Errorf("kubernetes client QPS %v: must be positive (or 0 for %d)", o.QPS, DefaultQPS))
	}
	if o.Burst < 0 {
		errs = append(errs, fmt.Errorf("kubernetes client burst %d: must be positive (or 0 for %d)", o.Burst, DefaultBurst))
	}
	if o.QPS > 0 && o.Burst > 0 && float32(o.Burst) < o.QPS {
		errs = append(errs, fmt.Errorf("kubernetes client burst %d is below QPS %v: set burst to at least QPS", o.Burst, o.QPS))
	}
	return errors.Join(errs...)
}

// Config returns the configuration of the cluster to talk to, by the
// standard rules: inside a Pod its ServiceAccount (token re-read as the
// kubelet rotates it), else the kubeconfig named by KUBECONFIG or
// ~/.kube/config, exec plugins (aws eks get-token) included. It also returns
// the namespace the configuration is in (the Pod's own, else the kubeconfig
// context's, which clientcmd makes "default" when the context names none),
// for the leader-election Lease. See Prepare for what is
// set on it.
func Config(o Options) (*rest.Config, string, error) {
	return load(o, rest.InClusterConfig, clientcmd.NewDefaultClientConfigLoadingRules(), serviceAccountDir)
}

func load(o Options, inCluster func() (*rest.Config, error), rules *clientcmd.ClientConfigLoadingRules, saDir string) (*rest.Config, string, error) {
	if err := o.Validate(); err != nil {
		return nil, "", err
	}
	cfg, err := inCluster()
	if err == nil {
		ns, _ := os.ReadFile(saDir + "/namespace")
		return Prepare(cfg, o), strings.TrimSpace(string(ns)), nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		// In a Pod whose ServiceAccount token is not mounted
		// (automountServiceAccountToken: false), say so: the kubeconfig
		// fallback would only add a confusing second error.
		return nil, "", fmt.Errorf("kubernetes client configuration: running in a Pod (KUBERNETES_SERVICE_HOST is set) but its ServiceAccount credentials cannot be read: %w; mount the ServiceAccount token (automountServiceAccountToken: true)", err)
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err = loader.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, "", errors.New("kubernetes client configuration: not in a Pod (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig (KUBECONFIG is not set and ~/.kube/config does not exist): run in the cluster with a ServiceAccount, or set KUBECONFIG to a kubeconfig file")
	}
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client configuration from the kubeconfig (KUBECONFIG, else ~/.kube/config): %w", err)
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client configuration: the kubeconfig's namespace: %w", err)
	}
	return Prepare(cfg, o), ns, nil
}

// Prepare sets what this daemon needs on cfg (a copy is returned): the rate
// limit, the user agent, and a transport that refuses redirects.
func Prepare(cfg *rest.Config, o Options) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	if cfg.QPS == 0 {
		cfg.QPS = DefaultQPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = max(DefaultBurst, int(cfg.QPS))
	}
	cfg.UserAgent = o.UserAgent
	wrap := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if wrap != nil {
			rt = wrap(rt)
		}
		return noRedirects{rt}
	}
	return cfg
}

// noRedirects answers every 3xx with an error. The API server never
// redirects; a proxy in front of it that does could send the request, with
// the bearer token client-go's auth layer adds to every request it is handed
// (net/http's own stripping of Authorization on cross-host redirects does not
// apply there), to another host. client-go's rest.Config has no redirect
// setting, so this sits in its transport chain (WrapTransport), below the
// auth layer, and returns an error before net/http can follow.
type noRedirects struct{ rt http.RoundTripper }

func (n noRedirects) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := n.rt.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 || resp.StatusCode > 399 || resp.StatusCode == http.StatusNotModified {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	where := "no Location"
	if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Host != "" {
		where = "to host " + loc.Host // the host only: a path or query can carry a secret
	} else if err == nil {
		where = "to the same host"
	}
	return nil, fmt.Errorf("kubernetes API %s %s answered %d, a redirect %s: not followed (the request carries credentials); point the kubeconfig's server at the API server itself",
		req.Method, req.URL.Host, resp.StatusCode, where)
}

func (n noRedirects) WrappedRoundTripper() http.RoundTripper { return n.rt }
