package registrytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// The media types of a Helm chart in an OCI registry, as helm push lays it
// out (https://helm.sh/docs/topics/registries/#oci-feature-deprecation-and-behavior-changes-with-v380;
// helm pkg/registry/constants.go).
const (
	ChartConfigMediaType = "application/vnd.cncf.helm.config.v1+json"
	ChartLayerMediaType  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// The clients here are oras-go's (oras.land/oras-go/v2), the library helm's
// registry client is built on: the login is its credentials.Login (what
// `helm registry login` does), a Docker config is read by its
// credentials.NewMemoryStoreFromDockerConfig, the pull is a manifest and
// layer fetch with its auth client answering the registry's challenge.

// Login checks user and password against host as `helm registry login`
// does: GET /v2/ with them must succeed.
func (n *Net) Login(ctx context.Context, host, user, password string) error {
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return err
	}
	reg.Client = n.client(nil)
	return credentials.Login(ctx, credentials.NewMemoryStore(), reg, auth.Credential{Username: user, Password: password})
}

// Pull logs in to ref's host with user and password and pulls ref
// (<host>/<repository>:<tag>), returning the chart archive (the manifest's
// one layer). It is what a consumer holding a username and password does,
// whichever Secret format they came from.
func (n *Net) Pull(ctx context.Context, ref, user, password string) ([]byte, error) {
	host, _, _ := strings.Cut(ref, "/")
	if err := n.Login(ctx, host, user, password); err != nil {
		return nil, err
	}
	return n.pull(ctx, ref, auth.StaticCredential(host, auth.Credential{Username: user, Password: password}))
}

// PullWithDockerConfig pulls ref with the credential that a Docker config
// (config.json, or the .dockerconfigjson of a kubernetes.io/dockerconfigjson
// Secret) holds for ref's host, looked up as oras and helm look it up.
func (n *Net) PullWithDockerConfig(ctx context.Context, ref string, dockerConfig []byte) ([]byte, error) {
	store, err := credentials.NewMemoryStoreFromDockerConfig(dockerConfig)
	if err != nil {
		return nil, err
	}
	return n.pull(ctx, ref, credentials.Credential(store))
}

// IsUnauthorized reports whether err is a registry refusing the pull for
// want of a good credential: the credential sent was refused (HTTP 401), or
// the registry asked for one (401 with a Basic challenge) and the client held
// none for its host.
func IsUnauthorized(err error) bool {
	var er *errcode.ErrorResponse
	return errors.As(err, &er) && er.StatusCode == http.StatusUnauthorized || errors.Is(err, auth.ErrBasicCredentialNotFound)
}

func (n *Net) client(cred auth.CredentialFunc) *auth.Client {
	return &auth.Client{Client: &http.Client{Transport: n.Transport(), Timeout: 30 * time.Second}, Credential: cred}
}

func (n *Net) pull(ctx context.Context, ref string, cred auth.CredentialFunc) ([]byte, error) {
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return nil, err
	}
	repo.Client = n.client(cred)
	_, raw, err := oras.FetchBytes(ctx, repo, repo.Reference.Reference, oras.DefaultFetchBytesOptions)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || len(m.Layers) != 1 || m.Layers[0].MediaType != ChartLayerMediaType {
		return nil, fmt.Errorf("pull %s: not a Helm chart manifest: %s", ref, raw)
	}
	return content.FetchAll(ctx, repo, m.Layers[0])
}

// PushChart pushes a Helm chart named after ref's last path element, at
// version (ref's tag), to ref as the registry's Pusher, laid out as helm push
// does; it returns the chart archive.
func (n *Net) PushChart(ctx context.Context, ref string) ([]byte, error) {
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return nil, err
	}
	reg := n.registries[repo.Reference.Registry]
	if reg == nil {
		return nil, fmt.Errorf("push %s: no registry for %s", ref, repo.Reference.Registry)
	}
	repo.Client = n.client(auth.StaticCredential(reg.Host, auth.Credential{Username: Pusher, Password: reg.pusherPW}))
	name := repo.Reference.Repository[strings.LastIndex(repo.Reference.Repository, "/")+1:]
	version := repo.Reference.Reference
	archive, err := chartArchive(name, version)
	if err != nil {
		return nil, err
	}
	cfg, _ := json.Marshal(map[string]string{"apiVersion": "v2", "name": name, "version": version})
	configDesc, err := oras.PushBytes(ctx, repo, ChartConfigMediaType, cfg)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	layer, err := oras.PushBytes(ctx, repo, ChartLayerMediaType, archive)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	manifest, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "",
		oras.PackManifestOptions{ConfigDescriptor: &configDesc, Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	if err := repo.Tag(ctx, manifest, version); err != nil {
		return nil, fmt.Errorf("tag %s: %w", ref, err)
	}
	return archive, nil
}

// chartArchive is the .tgz of a chart holding only its Chart.yaml.
func chartArchive(name, version string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	chart := fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ndescription: pulled with a refreshed ECR token\n", name, version)
	if err := tw.WriteHeader(&tar.Header{Name: name + "/Chart.yaml", Mode: 0o644, Size: int64(len(chart)), ModTime: time.Unix(0, 0)}); err != nil {
		return nil, err
	}
	if _, err := tw.Write([]byte(chart)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
