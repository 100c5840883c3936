package kubesecret

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// Auth is one registry's entry in a dockerconfigjson Secret.
type Auth struct {
	Username, Password string
}

// Auths returns the entries of every token, by host.
func Auths(tokens []refresher.Token) map[string]Auth {
	m := make(map[string]Auth, len(tokens))
	for _, t := range tokens {
		m[t.Host] = Auth{Username: t.Username, Password: t.Password}
	}
	return m
}

// Hosts returns the registry hosts a dockerconfigjson Secret holds entries
// for, as NormalizeHost spells them (an entry keyed "https://host/" is host),
// sorted; a key that names no host is returned as it is. It fails when the
// value is not a Docker config: what it holds cannot be told.
func Hosts(s *corev1.Secret) ([]string, error) {
	raw, ok := s.Data[corev1.DockerConfigJsonKey]
	if !ok || len(raw) == 0 {
		return nil, nil
	}
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %s is not a Docker config", s.Namespace, s.Name, corev1.DockerConfigJsonKey)
	}
	hosts := make([]string, 0, len(cfg.auths))
	for k := range cfg.auths {
		hosts = append(hosts, normalized(k))
	}
	slices.Sort(hosts)
	return slices.Compact(hosts), nil
}

func normalized(key string) string {
	if h, err := registryhost.NormalizeHost(key); err == nil {
		return h
	}
	return key
}

// dockerConfig is a .dockerconfigjson value: its auths entries and its other
// members (credHelpers, HttpHeaders, …), each kept as the bytes it came in.
type dockerConfig struct {
	auths map[string]json.RawMessage
	other map[string]json.RawMessage
}

func parseConfig(raw []byte) (dockerConfig, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return dockerConfig{}, err
	}
	cfg := dockerConfig{other: top}
	if a, ok := top["auths"]; ok {
		if err := json.Unmarshal(a, &cfg.auths); err != nil {
			return dockerConfig{}, err
		}
		delete(top, "auths")
	}
	return cfg, nil
}

// without returns raw's config with the entries for the hosts of auths
// removed, however they are spelled ("https://host", "host/"): what is not
// this writer's to set. A value that is not valid JSON gives an empty config
// (the Secret is this daemon's, its value is replaced).
func without(raw []byte, auths map[string]Auth) dockerConfig {
	cfg, err := parseConfig(raw)
	if err != nil || len(raw) == 0 {
		return dockerConfig{}
	}
	return cfg.dropping(func(host string) bool { _, ours := auths[host]; return ours })
}

// dropping returns c without the entries of the hosts drop reports, however
// they are spelled.
func (c dockerConfig) dropping(drop func(host string) bool) dockerConfig {
	out := dockerConfig{other: c.other}
	for k, v := range c.auths {
		if drop(normalized(k)) {
			continue
		}
		if out.auths == nil {
			out.auths = map[string]json.RawMessage{}
		}
		out.auths[k] = v
	}
	return out
}

// empty reports whether the config holds nothing besides what is written.
func (c dockerConfig) empty() bool { return len(c.auths) == 0 && len(c.other) == 0 }

// encode returns the config as JSON; keys come out sorted (encoding/json
// sorts map keys), so the same content is the same bytes.
func (c dockerConfig) encode() ([]byte, error) {
	top := maps.Clone(c.other)
	if top == nil {
		top = map[string]json.RawMessage{}
	}
	a, err := json.Marshal(c.auths)
	if c.auths == nil {
		a, err = []byte("{}"), nil
	}
	if err != nil {
		return nil, fmt.Errorf("encode .dockerconfigjson")
	}
	top["auths"] = a
	b, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("encode .dockerconfigjson")
	}
	return b, nil
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// with returns base with an entry for each of auths (under the bare host),
// encoded. base is not changed.
func (c dockerConfig) with(auths map[string]Auth) ([]byte, error) {
	out := dockerConfig{other: c.other, auths: make(map[string]json.RawMessage, len(c.auths)+len(auths))}
	maps.Copy(out.auths, c.auths)
	for h, a := range auths {
		b, err := json.Marshal(dockerAuth{Username: a.Username, Password: a.Password, Auth: authOf(a)})
		if err != nil {
			return nil, fmt.Errorf("encode the entry for %s", h) // no %w: the value holds a password
		}
		out.auths[h] = b
	}
	return out.encode()
}

// authOf is an entry's auth field: base64 of username:password.
func authOf(a Auth) string {
	return base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
}
