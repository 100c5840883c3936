// Package kubeapi is the Kubernetes API client the daemon's targets and its
// leader election share: the standard configuration loading (Config,
// Prepare), and typed calls on the few resources the daemon uses — Secrets,
// Namespaces, ServiceAccounts, Leases — plus custom resources as
// unstructured objects (Resource).
//
// It is client-go's rest client with a private scheme holding only those
// types. client-go's typed clients (k8s.io/client-go/kubernetes/typed/...)
// and tools/leaderelection import k8s.io/client-go/kubernetes/scheme, which
// links and registers all of Kubernetes' API groups at start: twice the
// daemon's binary and resident memory for types it never sends
// (docs/kubernetes.md). A test keeps that package out of kubeapi's
// dependencies.
//
// Every failed call returns an *Error naming verb, resource, namespace and
// object, and for a refusal the RBAC grant to add. Nothing here deletes.
package kubeapi

import (
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// newScheme holds the types this package decodes and the option types it
// encodes as query parameters, and nothing else.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	s.AddKnownTypes(corev1.SchemeGroupVersion,
		&corev1.Secret{}, &corev1.SecretList{},
		&corev1.Namespace{}, &corev1.NamespaceList{},
		&corev1.ServiceAccount{}, &corev1.ServiceAccountList{})
	s.AddKnownTypes(coordinationv1.SchemeGroupVersion, &coordinationv1.Lease{}, &coordinationv1.LeaseList{})
	// ListOptions, GetOptions, CreateOptions, UpdateOptions, PatchOptions,
	// WatchEvent and Status in each group version.
	metav1.AddToGroupVersion(s, corev1.SchemeGroupVersion)
	metav1.AddToGroupVersion(s, coordinationv1.SchemeGroupVersion)
	return s
}

// Client calls the Kubernetes API through one HTTP client and one rate
// limiter (Options.QPS, Burst) shared by every resource. It is safe for
// concurrent use; the handles it returns are small values.
type Client struct {
	core, coord *rest.RESTClient
	dyn         *dynamic.DynamicClient
	params      runtime.ParameterCodec
	dryRun      bool
}

// New returns a client for cfg (from Config or Prepare). It does not touch
// the network.
func New(cfg *rest.Config) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	scheme := newScheme()
	codecs := serializer.NewCodecFactory(scheme)
	rc := func(apiPath string, gv schema.GroupVersion) (*rest.RESTClient, error) {
		c := rest.CopyConfig(cfg)
		c.APIPath, c.GroupVersion = apiPath, &gv
		c.NegotiatedSerializer = codecs.WithoutConversion()
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientForConfigAndClient(c, hc)
	}
	c := &Client{params: runtime.NewParameterCodec(scheme)}
	if c.core, err = rc("/api", corev1.SchemeGroupVersion); err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	if c.coord, err = rc("/apis", coordinationv1.SchemeGroupVersion); err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	if c.dyn, err = dynamic.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return c, nil
}

// DryRun returns a client over the same connection and rate limit whose
// every Create, Update and Patch is a server-side dry run (dryRun=All): the
// API server checks, admits and answers exactly as for the real call, and
// stores nothing (https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run).
// Reads are unchanged. --dry-run plans with it what the real run would do.
func (c *Client) DryRun() *Client {
	d := *c
	d.dryRun = true
	return &d
}

// Secrets are the Secrets of namespace.
func (c *Client) Secrets(namespace string) Typed[*corev1.Secret, *corev1.SecretList] {
	return newTyped(c, c.core, "secrets", "", namespace, func() *corev1.Secret { return &corev1.Secret{} }, func() *corev1.SecretList { return &corev1.SecretList{} })
}

// Namespaces are the cluster's namespaces (cluster-scoped).
func (c *Client) Namespaces() Typed[*corev1.Namespace, *corev1.NamespaceList] {
	return newTyped(c, c.core, "namespaces", "", "", func() *corev1.Namespace { return &corev1.Namespace{} }, func() *corev1.NamespaceList { return &corev1.NamespaceList{} })
}

// ServiceAccounts are the ServiceAccounts of namespace ("" lists and
// watches them in every namespace).
func (c *Client) ServiceAccounts(namespace string) Typed[*corev1.ServiceAccount, *corev1.ServiceAccountList] {
	return newTyped(c, c.core, "serviceaccounts", "", namespace, func() *corev1.ServiceAccount { return &corev1.ServiceAccount{} }, func() *corev1.ServiceAccountList { return &corev1.ServiceAccountList{} })
}

// Leases are the coordination.k8s.io/v1 Leases of namespace.
func (c *Client) Leases(namespace string) Typed[*coordinationv1.Lease, *coordinationv1.LeaseList] {
	return newTyped(c, c.coord, "leases", coordinationv1.GroupName, namespace, func() *coordinationv1.Lease { return &coordinationv1.Lease{} }, func() *coordinationv1.LeaseList { return &coordinationv1.LeaseList{} })
}

// Resource is a custom resource, read as unstructured objects: Rancher's
// projects.management.cattle.io/v3 (namespaced: call Namespace) or
// catalog.cattle.io/v1 clusterrepos (cluster-scoped).
func (c *Client) Resource(gvr schema.GroupVersionResource) Custom {
	return Custom{ri: c.dyn.Resource(gvr), gvr: gvr}
}
