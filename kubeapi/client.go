// Package kubeapi reaches a Kubernetes API server the way every part of the
// daemon shares: standard configuration loading (in-cluster, else KUBECONFIG),
// a deliberate rate limit, no redirects, and errors that name what RBAC
// refused. It knows nothing of ECR or of what is written. See docs/kubernetes.md.
package kubeapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// DefaultQPS and DefaultBurst are the client's rate limit. client-go's own
	// default (5 QPS, burst 10) makes 1,000 namespace writes take 200 s, and 50
	// QPS still 20 s (measured: BENCHMARKS.md); at 200 they take about 5 s. The
	// writes come in a burst every few hours, four at a time, and the API
	// server's Priority and Fairness queues them against everything else
	// (https://kubernetes.io/docs/concepts/cluster-administration/flow-control/).
	DefaultQPS   = 200
	DefaultBurst = 400
)

// Config returns the configuration of the cluster to write into, by the
// standard rules: inside a Pod its ServiceAccount (token re-read as the kubelet
// rotates it), else the kubeconfig named by KUBECONFIG or ~/.kube/config, exec
// plugins (aws eks get-token) included. It also returns the namespace the
// configuration is in (the Pod's own, or the kubeconfig context's), for the
// leader-election Lease. See Prepare for what is set on it.
func Config(userAgent string) (*rest.Config, string, error) {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		cfg, err = loader.ClientConfig()
	}
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client configuration (in-cluster, else KUBECONFIG): %w", err)
	}
	ns, _, _ := loader.Namespace() // in a Pod: the ServiceAccount's namespace file
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		ns = string(b)
	}
	return Prepare(cfg, userAgent), ns, nil
}

// Prepare sets what this daemon needs on cfg (a copy is returned): the rate
// limit, the user agent, and a transport that refuses redirects.
func Prepare(cfg *rest.Config, userAgent string) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	cfg.UserAgent = userAgent
	wrap := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if wrap != nil {
			rt = wrap(rt)
		}
		return noRedirects{rt}
	}
	return cfg
}

// Client is the part of a clientset this daemon uses: core/v1 (namespaces,
// Secrets, ServiceAccounts) and coordination/v1 (the leader-election Lease).
// *kubernetes.Clientset implements it.
type Client interface {
	CoreV1() corev1client.CoreV1Interface
	CoordinationV1() coordinationv1client.CoordinationV1Interface
}

type client struct {
	core  *corev1client.CoreV1Client
	coord *coordinationv1client.CoordinationV1Client
}

func (c client) CoreV1() corev1client.CoreV1Interface                         { return c.core }
func (c client) CoordinationV1() coordinationv1client.CoordinationV1Interface { return c.coord }

// NewClient returns the two typed clients for cfg (from Config or Prepare),
// over one HTTP client. Not the full clientset: its other API groups would add
// binary size for nothing (see docs/kubernetes.md).
func NewClient(cfg *rest.Config) (Client, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	core, err := corev1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	coord, err := coordinationv1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return client{core: core, coord: coord}, nil
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
