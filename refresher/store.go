package refresher

import (
	"context"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
)

// RegistryStore is where registry credentials are kept: one Rancher scope.
// *rancherapi.Client implements it.
type RegistryStore interface {
	ListRegistries(ctx context.Context) ([]rancherapi.Registry, error)
	CreateRegistry(ctx context.Context, serverAddress, description string) (rancherapi.Registry, error)
	ListRegistryCredentials(ctx context.Context, registryID string) ([]rancherapi.RegistryCredential, error)
	CreateRegistryCredential(ctx context.Context, in rancherapi.CredentialInput) (rancherapi.RegistryCredential, error)
	UpdateRegistryCredential(ctx context.Context, id string, in rancherapi.CredentialInput) (rancherapi.RegistryCredential, error)
}

var _ RegistryStore = (*rancherapi.Client)(nil)

// DockerCredentialStore is a Rancher 2.x project's dockerCredentials.
// *rancherapi.Client implements it.
type DockerCredentialStore interface {
	ListDockerCredentials(ctx context.Context) ([]rancherapi.DockerCredential, error)
	CreateDockerCredential(ctx context.Context, name string, regs map[string]rancherapi.RegistryAuth) (rancherapi.DockerCredential, error)
	UpdateDockerCredential(ctx context.Context, id string, regs map[string]rancherapi.RegistryAuth) (rancherapi.DockerCredential, error)
	ListNamespacedDockerCredentials(ctx context.Context) ([]rancherapi.DockerCredential, error)
	UpdateNamespacedDockerCredential(ctx context.Context, id string, regs map[string]rancherapi.RegistryAuth) (rancherapi.DockerCredential, error)
}

var _ DockerCredentialStore = (*rancherapi.Client)(nil)

// Scope is one place credentials are written into, with the name used in logs,
// /readyz and metrics: a Rancher 1.x environment id ("default" for the API key's
// own) with Store set, or a Rancher 2.x project id with Docker set.
type Scope struct {
	Name   string
	Store  RegistryStore
	Docker DockerCredentialStore
}
