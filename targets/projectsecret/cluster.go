// Package projectsecret writes ECR credentials into Rancher 2.12+ projects the
// way Rancher's own Dashboard does: a kubernetes.io/dockerconfigjson Secret in
// the project's backing namespace of the local (management) cluster, labelled
// management.cattle.io/project-scoped-secret=<project>, which Rancher copies
// into every namespace of the project at once. The local cluster is reached
// through Rancher's proxy, <rancher>/k8s/clusters/local, with the same API
// token, or from inside it with a ServiceAccount. See docs/rancher-2.12.md.
package projectsecret

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// ProjectsResource is Rancher's projects.management.cattle.io/v3, namespaced by cluster id.
var ProjectsResource = schema.GroupVersionResource{Group: "management.cattle.io", Version: "v3", Resource: "projects"}

// Cluster is the local (management) cluster's Kubernetes API as the targets of
// every project share it: one client, one Secret writer.
type Cluster struct {
	Client   *kubeapi.Client
	Projects kubeapi.Custom
	Writer   *kubesecret.Writer
	// Proxy is true when the API is Rancher's proxy reached with a Rancher API
	// token (errors then speak of the token's user and its Rancher roles), false
	// for a ServiceAccount in the cluster itself.
	Proxy bool
}

// NewCluster builds the clients for cfg (from kubeapi.Config, or ProxyConfig). It
// does not touch the network.
func NewCluster(cfg *rest.Config, proxy bool) (*Cluster, error) {
	client, err := kubeapi.New(cfg)
	if err != nil {
		return nil, err
	}
	secrets := func(ns string) kubesecret.SecretsAPI { return client.Secrets(ns).Needs(secretVerbs...) }
	return &Cluster{Client: client, Projects: client.Resource(ProjectsResource).Needs("get", "list"), Writer: kubesecret.NewWriter(secrets), Proxy: proxy}, nil
}

// ProxyConfig is the configuration of Rancher's proxy to the local cluster,
// <rancher>/k8s/clusters/local, over the Rancher client's own transport (its
// TLS settings, RANCHER_CA_FILE included) with its API token; o sets the
// user agent and the rate limit.
func ProxyConfig(c *rancherapi.Client, o kubeapi.Options) *rest.Config {
	return kubeapi.Prepare(&rest.Config{Host: c.KubeURL("local"), Transport: c.KubeTransport(), Timeout: c.Timeout()}, o)
}

// SplitProject splits "<cluster id>:<project id>".
func SplitProject(id string) (cluster, project string, err error) {
	cluster, project, ok := strings.Cut(id, ":")
	if !ok || cluster == "" || project == "" {
		return "", "", fmt.Errorf("%q is not a Rancher 2.x project id such as c-abcde:p-fghij", id)
	}
	return cluster, project, nil
}

// BackingNamespace returns the namespace of the local cluster that holds a
// project's Secrets: the project's status.backingNamespace (<cluster>-<project>
// for projects made by Rancher 2.9.9+ and 2.12+), or, when that is empty, the
// project id itself, as Rancher's GetProjectBackingNamespace does
// (https://github.com/rancher/rancher/blob/main/pkg/apis/management.cattle.io/v3/authz_types.go).
func (c *Cluster) BackingNamespace(ctx context.Context, id string) (string, error) {
	obj, err := c.project(ctx, id)
	if err != nil {
		return "", err
	}
	ns, _, _ := unstructured.NestedString(obj.Object, "status", "backingNamespace")
	if ns == "" {
		_, ns, _ = SplitProject(id)
	}
	return ns, nil
}

// Annotations returns a project's annotations (rancher-ecr-credentials/role-arn
// names the AWS role whose tokens it gets).
func (c *Cluster) Annotations(ctx context.Context, id string) (map[string]string, error) {
	obj, err := c.project(ctx, id)
	if err != nil {
		return nil, err
	}
	return obj.GetAnnotations(), nil
}

// project reads projects.management.cattle.io/<project> in namespace <cluster>.
func (c *Cluster) project(ctx context.Context, id string) (*unstructured.Unstructured, error) {
	cluster, project, err := SplitProject(id)
	if err != nil {
		return nil, refresher.Permanent(err)
	}
	obj, err := c.Projects.Namespace(cluster).Get(ctx, project, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, refresher.Permanent(fmt.Errorf("project %s does not exist: there is no projects.management.cattle.io %q in namespace %q of the local cluster (check the id in RANCHER_PROJECTS or CATTLE_URL: Rancher shows it as <cluster id>:<project id>)",
			id, project, cluster))
	case err != nil:
		return nil, c.explain(id, &kubeapi.Error{Verb: "get", Resource: "projects.management.cattle.io", Namespace: cluster, Name: project, Verbs: []string{"get"}, Err: err})
	}
	return obj, nil
}

// Project is a project of the local cluster as a listing shows it.
type Project struct {
	// ID is <cluster id>:<project id>.
	ID          string
	Annotations map[string]string
}

// ListProjects returns every project in the local cluster but Rancher's
// System project, for RANCHER_PROJECTS=all without CATTLE_URL.
func (c *Cluster) ListProjects(ctx context.Context) ([]Project, error) {
	var out []Project
	var pages kubeapi.Pages
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := c.Projects.List(ctx, opts)
		if err != nil {
			return nil, c.explain("", &kubeapi.Error{Verb: "list", Resource: "projects.management.cattle.io", Verbs: []string{"list"}, Err: err})
		}
		for _, p := range list.Items {
			if p.GetLabels()[rancherapi.SystemProjectLabel] == "true" {
				continue // Rancher's own namespaces: written only when named
			}
			out = append(out, Project{ID: p.GetNamespace() + ":" + p.GetName(), Annotations: p.GetAnnotations()})
		}
		if opts.Continue, err = pages.Next(list.GetContinue()); err != nil {
			return nil, fmt.Errorf("list projects.management.cattle.io: %w", err)
		} else if opts.Continue == "" {
			return out, nil
		}
	}
}

// explain says what to do about a failed call: which Rancher role grants it, or
// that the token is not accepted by the local cluster's proxy. A refusal or a
// missing object is permanent (retried only after RETRY_MAX_INTERVAL).
func (c *Cluster) explain(project string, e *kubeapi.Error) error {
	var err error = e
	switch {
	case apierrors.IsUnauthorized(e.Err) && c.Proxy:
		err = fmt.Errorf("%w: Rancher's proxy to the local cluster (/k8s/clusters/local) refused the API token; a token scoped to one cluster (as kubeconfig tokens are) works only for that cluster: "+
			"use an API key with no scope (Rancher UI → Account & API Keys → Create API Key, Scope: No Scope) in CATTLE_SECRET_KEY, or one scoped to the local cluster", e)
	case apierrors.IsUnauthorized(e.Err):
		err = fmt.Errorf("%w: the ServiceAccount token was rejected by the API server", e)
	case apierrors.IsForbidden(e.Err):
		err = fmt.Errorf("%w; %s", e, grantHint(project, e, c.Proxy))
	case e.Temporary():
		return e
	}
	return refresher.Permanent(err)
}

// grantHint names what grants a refused call, in Rancher's terms.
func grantHint(project string, e *kubeapi.Error, proxy bool) string {
	who := "the API token's user"
	if !proxy {
		who = "the ServiceAccount"
	}
	on := "the project"
	if project != "" {
		on = "project " + project
	}
	switch {
	case e.Resource == "secrets" && proxy:
		return fmt.Sprintf("in Rancher, give %s the Project Member role (or Project Owner, or a custom project role with Manage Secrets) on %s: Rancher then grants %s on secrets in its backing namespace %s",
			who, on, strings.Join(e.Verbs, ", "), e.Namespace)
	case e.Resource == "secrets":
		return fmt.Sprintf("bind %s to %s in Rancher (Project Member), or grant it %s on secrets in namespace %s with a Role and RoleBinding",
			who, on, strings.Join(e.Verbs, ", "), e.Namespace)
	case e.Namespace == "":
		return fmt.Sprintf("listing every project (RANCHER_PROJECTS=all) needs list on projects.management.cattle.io in all namespaces (a ClusterRole and ClusterRoleBinding for %s); or name the projects in RANCHER_PROJECTS", who)
	case proxy:
		return fmt.Sprintf("in Rancher, give %s a role on %s (Project Member or Owner): Rancher then lets it read the project in namespace %s to find the backing namespace", who, on, e.Namespace)
	}
	return fmt.Sprintf("grant %s get on projects.management.cattle.io in namespace %s (a Role and RoleBinding), or bind it to %s in Rancher", who, e.Namespace, on)
}

// isForbidden reports whether err is a refusal by RBAC.
func isForbidden(err error) bool {
	var e *kubeapi.Error
	return errors.As(err, &e) && apierrors.IsForbidden(e.Err)
}
