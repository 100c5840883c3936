package kubesecret_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/docker/cli/cli/config/configfile"
	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

// other is a pretty-printed Docker config as docker login and editors leave
// it: another host's entry (with a brace and an escaped quote in its value),
// credHelpers, and our host spelled as a URL.
const other = `{
	"auths": {
		"registry.example.com": {
			"auth": "dXNlcjpwe30iYQ==",
			"email": "ops@example.com \"}\""
		},
		"https://` + host + `/v1/": {
			"auth": "QVdTOm9sZA=="
		}
	},
	"credHelpers": {
		"gcr.io": "gcloud"
	}
}`

// edit applies DockerConfig(key, host, …) to a Secret holding raw at key.
func edit(t *testing.T, raw, pw string) ([]byte, error) {
	t.Helper()
	s := &corev1.Secret{Data: map[string][]byte{"config.json": []byte(raw)}}
	vals, err := kubesecret.ApplyEdit(kubesecret.DockerConfig("config.json", host, kubesecret.Auth{Username: "AWS", Password: pw}), s)
	return vals["config.json"], err
}

// The entry is set in place, read back by the Docker CLI's own config
// loader; everything else is byte for byte what it was.
func TestDockerConfig_EditsInPlace(t *testing.T) {
	t.Parallel()
	out, err := edit(t, other, "new-pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg := configfile.New("config.json")
	if err := cfg.LoadFromReader(bytes.NewReader(out)); err != nil {
		t.Fatalf("the Docker CLI cannot load the result: %v\n%s", err, out)
	}
	a, err := cfg.GetAuthConfig(host)
	if err != nil || a.Username != "AWS" || a.Password != "new-pw" {
		t.Errorf("docker's view of %s: %+v, %v", host, a, err)
	}
	if o, _ := cfg.GetAuthConfig("registry.example.com"); o.Username != "user" || o.Password != `p{}"a` {
		t.Errorf("docker's view of the other host: %+v", o)
	}
	if cfg.CredentialHelpers["gcr.io"] != "gcloud" {
		t.Errorf("credHelpers: %v", cfg.CredentialHelpers)
	}
	// Cut our value out of both: what is left must be identical.
	before, after, ok := strings.Cut(other, `{
			"auth": "QVdTOm9sZA=="
		}`)
	if !ok || !strings.HasPrefix(string(out), before) || !strings.HasSuffix(string(out), after) {
		t.Errorf("the text around the entry changed:\n%s", out)
	}
}

func TestDockerConfig_Forms(t *testing.T) {
	t.Parallel()
	entry := `{"username":"AWS","password":"pw","auth":"QVdTOnB3"}`
	for _, tt := range []struct{ name, in, want string }{
		{"Empty", "", `{"auths":{"` + host + `":` + entry + `}}`},
		{"NoAuths", `{"credHelpers":{}}`, `{"credHelpers":{},"auths":{"` + host + `":` + entry + `}}`},
		{"EmptyObject", ` { } `, ` { "auths":{"` + host + `":` + entry + `}} `},
		{"EmptyAuths", `{"auths":{}}`, `{"auths":{"` + host + `":` + entry + `}}`},
		{"OtherHost", `{"auths":{"a.example.com":{"auth":"eDp5"}}}`, `{"auths":{"a.example.com":{"auth":"eDp5"},"` + host + `":` + entry + `}}`},
		{"TwoSpellings", `{"auths":{"` + host + `":{},"https://` + strings.ToUpper(host) + `":{"auth":"b2xk"}}}`,
			`{"auths":{"` + host + `":` + entry + `,"https://` + strings.ToUpper(host) + `":` + entry + `}}`},
		{"Unchanged", `{"auths":{"` + host + `":` + entry + `}}`, `{"auths":{"` + host + `":` + entry + `}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := edit(t, tt.in, "pw")
			if err != nil || string(got) != tt.want {
				t.Errorf("edit(%s)\n got %s, %v\nwant %s", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{`{"auths":`, `[1]`, `"x"`, `{"auths":[]}`, `{"auths":"x"}`} {
		if got, err := edit(t, bad, "pw"); err == nil || !strings.Contains(err.Error(), "not a Docker config; it is never replaced") {
			t.Errorf("edit(%s) = %s, %v; want a refusal", bad, got, err)
		}
	}
}
