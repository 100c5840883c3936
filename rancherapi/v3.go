package rancherapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Project is a Rancher 1.x environment or a Rancher 2.x project.
type Project struct {
	ID     string            `json:"id"` // "1a5" or "c-abcde:p-fghij"
	Name   string            `json:"name"`
	State  string            `json:"state"`
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are a Rancher 2.x project's (the projects.management.cattle.io
	// object's), e.g. rancher-ecr-credentials/role-arn.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// System reports whether p is a Rancher 2.x System project (cattle-system,
// kube-system and Rancher's own namespaces): labelled
// authz.management.cattle.io/system-project=true by Rancher, named "System".
// See https://github.com/rancher/rancher/blob/release/v2.12/pkg/controllers/management/auth/project_cluster/project_handler.go
func (p Project) System() bool {
	return p.Labels[SystemProjectLabel] == "true" || (p.Labels == nil && p.Name == "System")
}

// SystemProjectLabel marks Rancher's System project, on the /v3 object and on
// projects.management.cattle.io alike.
const SystemProjectLabel = "authz.management.cattle.io/system-project"

// ListProjects returns every environment (Rancher 1.x) or project (Rancher 2.x)
// the key can see, all pages.
//
// API: GET <root>/projects (Cattle and norman alike).
func (c *Client) ListProjects(ctx context.Context) ([]Project, error) {
	u := c.root.JoinPath("projects")
	return listAllURL[Project](ctx, c, u, nil)
}

// GetProject reads one Rancher 2.x project, its annotations included.
//
// API: GET /v3/projects/<cluster id>:<project id>.
func (c *Client) GetProject(ctx context.Context, id string) (Project, error) {
	if !c.rancher2 {
		return Project{}, fmt.Errorf("projects are read one by one on Rancher 2.x (/v3) only; %s is Rancher 1.x", sanitizeURL(c.root))
	}
	return send[Project](ctx, c, http.MethodGet, c.root.JoinPath("projects", id), nil)
}

// DockerCredential is a Rancher 2.x project-scoped dockerCredential as read back
// (docs/rancher-api.md#dockercredentials). Passwords are write-only and never come back, so a read-back map
// holds user names only.
type DockerCredential struct {
	ID         string                      `json:"id"` // "p-fghij:ecr-111122223333-us-east-1"
	Name       string                      `json:"name"`
	ProjectID  string                      `json:"projectId,omitempty"`
	Registries map[string]RegistryUsername `json:"registries"`
	// NamespaceID is set for a namespacedDockerCredential (one namespace only).
	NamespaceID string `json:"namespaceId,omitempty"`
}

// RegistryUsername is a read-back registries entry.
type RegistryUsername struct {
	Username string `json:"username"`
}

// RegistryAuth is a registries entry to write.
type RegistryAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// String never prints the password.
func (a RegistryAuth) String() string { return "{username:" + a.Username + " password:REDACTED}" }

// GoString keeps %#v from printing the password too.
func (a RegistryAuth) GoString() string { return a.String() }

// Hosts returns the registry hosts of a credential, sorted.
func (d DockerCredential) Hosts() []string {
	hosts := make([]string, 0, len(d.Registries))
	for h := range d.Registries {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	return hosts
}

// ListDockerCredentials returns the project's dockerCredentials, all pages.
//
// API: GET /v3/project/<project>/dockercredentials.
func (c *Norman) ListDockerCredentials(ctx context.Context) ([]DockerCredential, error) {
	if err := c.needProject(); err != nil {
		return nil, err
	}
	return listAll[DockerCredential](ctx, c.Client, "dockercredentials", nil)
}

// CreateDockerCredential creates a project-scoped dockerCredential. The answer is
// 201; a name in use is a conflict.
//
// API: POST /v3/project/<project>/dockercredentials.
func (c *Norman) CreateDockerCredential(ctx context.Context, name string, regs map[string]RegistryAuth) (DockerCredential, error) {
	if err := c.needProject(); err != nil {
		return DockerCredential{}, err
	}
	body := struct {
		Type       string                  `json:"type"`
		Name       string                  `json:"name"`
		Registries map[string]RegistryAuth `json:"registries"`
	}{"dockerCredential", name, regs}
	return send[DockerCredential](ctx, c.Client, http.MethodPost, c.endpoint("dockercredentials", nil), body)
}

// UpdateDockerCredential replaces a dockerCredential's registries in place (the
// secret keeps its name, so imagePullSecrets keep working). The whole map is
// replaced (docs/rancher-api.md#dockercredential-updates): regs must hold every host the credential should keep.
//
// API: PUT /v3/project/<project>/dockerCredentials/<id>.
func (c *Norman) UpdateDockerCredential(ctx context.Context, id string, regs map[string]RegistryAuth) (DockerCredential, error) {
	return c.updateRegistries(ctx, "dockerCredentials", id, regs)
}

func (c *Norman) updateRegistries(ctx context.Context, plural, id string, regs map[string]RegistryAuth) (DockerCredential, error) {
	if err := c.needProject(); err != nil {
		return DockerCredential{}, err
	}
	body := struct {
		Registries map[string]RegistryAuth `json:"registries"`
	}{regs}
	return send[DockerCredential](ctx, c.Client, http.MethodPut, c.endpoint(plural+"/"+url.PathEscape(id), nil), body)
}

// ListNamespacedDockerCredentials returns the namespaced dockerCredentials of
// the project's namespaces, all pages.
//
// API: GET /v3/project/<project>/namespaceddockercredentials.
func (c *Norman) ListNamespacedDockerCredentials(ctx context.Context) ([]DockerCredential, error) {
	if err := c.needProject(); err != nil {
		return nil, err
	}
	return listAll[DockerCredential](ctx, c.Client, "namespaceddockercredentials", nil)
}

// UpdateNamespacedDockerCredential replaces a namespaced dockerCredential's
// registries in place, whole, like UpdateDockerCredential.
//
// API: PUT /v3/project/<project>/namespacedDockerCredentials/<namespace>:<name>.
func (c *Norman) UpdateNamespacedDockerCredential(ctx context.Context, id string, regs map[string]RegistryAuth) (DockerCredential, error) {
	return c.updateRegistries(ctx, "namespacedDockerCredentials", id, regs)
}

func (c *Norman) needProject() error {
	if c.projectID == "" || !strings.Contains(c.projectID, ":") {
		return fmt.Errorf("dockerCredentials need a project (<cluster id>:<project id>), not %q", c.projectID)
	}
	return nil
}

// entries counts a credential and each registry host it holds against a
// listing's bound (see MaxListEntries).
func (d DockerCredential) entries() int { return 1 + len(d.Registries) }
