package rancherapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Registry is a Cattle registry (docs/rancher-api.md#registries). ServerAddress is create-only.
type Registry struct {
	ID            string `json:"id"`
	Name          string `json:"name,omitempty"`
	Description   string `json:"description,omitempty"`
	ServerAddress string `json:"serverAddress"`
	AccountID     string `json:"accountId,omitempty"`
	State         string `json:"state,omitempty"`
}

// RegistryCredential is a Cattle registryCredential as read back (docs/rancher-api.md#registry-credentials). It has
// no SecretValue field on purpose: the password is write-only for most roles, and a
// create response that echoes it is dropped by the decoder instead of being kept.
type RegistryCredential struct {
	ID          string `json:"id"`
	RegistryID  string `json:"registryId"`
	PublicValue string `json:"publicValue"`
	Email       string `json:"email,omitempty"`
	State       string `json:"state,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
}

// CredentialInput is the body of a credential create or update. Only these fields
// are sent: Cattle silently drops fields it cannot update (docs/rancher-api.md#updates).
type CredentialInput struct {
	RegistryID  string `json:"registryId,omitempty"` // create only
	PublicValue string `json:"publicValue"`
	SecretValue string `json:"secretValue"`
	// Email must be non-empty: /v1 rejects a create without it and an update with
	// an empty one (docs/rancher-api.md#email).
	Email string `json:"email"`
}

// String never prints the secret, so a CredentialInput in a log line is harmless.
func (in CredentialInput) String() string {
	return fmt.Sprintf("{registryId:%s publicValue:%s secretValue:REDACTED email:%s}", in.RegistryID, in.PublicValue, in.Email)
}

// GoString keeps %#v from printing the secret too.
func (in CredentialInput) GoString() string { return in.String() }

// ListRegistries returns every registry in the scope, all pages.
//
// Cattle API: GET <base>/registries. Registries cannot be filtered by
// serverAddress (the filter is silently ignored, docs/rancher-api.md#pagination), so callers match
// client-side.
func (c *Cattle) ListRegistries(ctx context.Context) ([]Registry, error) {
	return listAll[Registry](ctx, c.Client, "registries", nil)
}

// CreateRegistry creates a registry for serverAddress. The answer is 201 with the
// registry still registering; a registry with the same address in the scope gives
// a 400 ServerAddressUsed error.
//
// Cattle API: POST <base>/registries.
func (c *Cattle) CreateRegistry(ctx context.Context, serverAddress, description string) (Registry, error) {
	body := struct {
		ServerAddress string `json:"serverAddress"`
		Description   string `json:"description,omitempty"`
	}{serverAddress, description}
	return send[Registry](ctx, c.Client, http.MethodPost, c.endpoint("registries", nil), body)
}

// ListRegistryCredentials returns the credentials of one registry, all pages. Only
// credentials whose registryId matches are returned, whatever the server filtered.
//
// Cattle API: GET <base>/registrycredentials?registryId=<id>.
func (c *Cattle) ListRegistryCredentials(ctx context.Context, registryID string) ([]RegistryCredential, error) {
	all, err := listAll[RegistryCredential](ctx, c.Client, "registrycredentials", url.Values{"registryId": {registryID}})
	if err != nil {
		return nil, err
	}
	own := all[:0]
	for _, cr := range all {
		if cr.RegistryID == registryID {
			own = append(own, cr)
		}
	}
	return own, nil
}

// CreateRegistryCredential creates a credential for in.RegistryID.
//
// Cattle API: POST <base>/registrycredentials.
func (c *Cattle) CreateRegistryCredential(ctx context.Context, in CredentialInput) (RegistryCredential, error) {
	return send[RegistryCredential](ctx, c.Client, http.MethodPost, c.endpoint("registrycredentials", nil), in)
}

// UpdateRegistryCredential writes new values into an existing credential in place,
// keeping its id (containers hold the id, docs/rancher-api.md#pulls). in.RegistryID is not sent.
//
// Cattle API: PUT <base>/registrycredentials/<id>.
func (c *Cattle) UpdateRegistryCredential(ctx context.Context, id string, in CredentialInput) (RegistryCredential, error) {
	in.RegistryID = ""
	return send[RegistryCredential](ctx, c.Client, http.MethodPut, c.endpoint("registrycredentials/"+url.PathEscape(id), nil), in)
}
