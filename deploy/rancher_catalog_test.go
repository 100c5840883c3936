package deploy_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v4"
)

const rancherCatalogDir = "rancher-catalog/templates/rancher-ecr-credentials"

// rancherCompose is the part of a Rancher 1.6 catalog rancher-compose.yml the
// stack relies on.
type rancherCompose struct {
	Version string `yaml:"version"`
	Catalog struct {
		Name                  string `yaml:"name"`
		Version               string `yaml:"version"`
		MinimumRancherVersion string `yaml:"minimum_rancher_version"`
		Questions             []struct {
			Variable, Label, Description, Type, Default string
			Required                                    bool
			Options                                     []string
		} `yaml:"questions"`
	} `yaml:"catalog"`
	Services map[string]struct {
		Scale       int `yaml:"scale"`
		HealthCheck *struct {
			Port        int    `yaml:"port"`
			RequestLine string `yaml:"request_line"`
		} `yaml:"health_check"`
	} `yaml:"services"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// libcomposeV2 compiles the schema libcompose (rancher-compose's loader)
// validates a format-2 file's services against; see testdata/README.md.
func libcomposeV2(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/libcompose_services_schema_v2.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("config_schema_v2.0.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("config_schema_v2.0.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// asJSON turns decoded YAML into the JSON values the schema validator takes.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// interpolate replaces ${VAR} in every string of the decoded file, as libcompose
// does after parsing, and returns the names it met.
func interpolate(t *testing.T, v any, answers map[string]string) (any, []string) {
	t.Helper()
	var used []string
	var walk func(any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		case string:
			s, err := template.Substitute(v, func(name string) (string, bool) {
				used = append(used, name)
				a, ok := answers[name]
				return a, ok
			})
			if err != nil {
				t.Errorf("interpolating %q: %v", v, err)
			}
			return s
		}
		return v
	}
	return walk(v), used
}

// TestRancherCatalog checks the Rancher 1.6 catalog template: the compose file is
// format 2 and valid under libcompose's schema once the questions' defaults are
// filled in, every ${VAR} has a question and every question is used, every
// variable it sets is one the binary reads and parses, the agent labels are
// there, and Rancher's health check and stop timeout fit the daemon.
func TestRancherCatalog(t *testing.T) {
	t.Parallel()
	schema := libcomposeV2(t)

	var meta map[string]any
	readYAML(t, filepath.Join(rancherCatalogDir, "config.yml"), &meta)
	for _, k := range []string{"name", "description", "version", "category"} {
		if s, _ := meta[k].(string); s == "" {
			t.Errorf("config.yml: %s is missing", k)
		}
	}

	var rc rancherCompose
	readYAML(t, filepath.Join(rancherCatalogDir, "0", "rancher-compose.yml"), &rc)
	if rc.Version != "2" || rc.Catalog.Version == "" || rc.Catalog.MinimumRancherVersion == "" {
		t.Errorf("rancher-compose.yml: version %q, catalog version %q, minimum_rancher_version %q", rc.Version, rc.Catalog.Version, rc.Catalog.MinimumRancherVersion)
	}
	answers := map[string]string{}
	// The question types Rancher 1.6's catalog UI knows.
	types := []string{"string", "int", "float", "boolean", "password", "enum", "multiline", "certificate", "service"}
	for _, q := range rc.Catalog.Questions {
		if q.Variable == "" || q.Label == "" || !slices.Contains(types, q.Type) {
			t.Errorf("question %+v: needs a variable, a label and a type of %v", q, types)
		}
		if q.Type == "enum" && !slices.Contains(q.Options, q.Default) || q.Type == "boolean" && q.Default != "true" && q.Default != "false" {
			t.Errorf("question %s: default %q is not one of its options", q.Variable, q.Default)
		}
		if q.Required && q.Default == "" && q.Type != "password" {
			t.Logf("question %s is required with no default", q.Variable)
		}
		answers[q.Variable] = q.Default
	}
	for _, k := range []string{"AWS_REGION", "AWS_ECR_REGISTRY_IDS", "REFRESH_SCHEDULE", "AUTO_CREATE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if _, ok := answers[k]; !ok {
			t.Errorf("rancher-compose.yml asks no question for %s", k)
		}
	}

	var raw map[string]any
	readYAML(t, filepath.Join(rancherCatalogDir, "0", "docker-compose.yml"), &raw)
	doc, used := interpolate(t, raw, answers)
	for _, v := range used {
		if _, ok := answers[v]; !ok {
			t.Errorf("docker-compose.yml uses ${%s}, which no question answers", v)
		}
	}
	for v := range answers {
		if !slices.Contains(used, v) {
			t.Errorf("question %s is not used in docker-compose.yml", v)
		}
	}
	file := doc.(map[string]any)
	if file["version"] != "2" {
		t.Errorf("docker-compose.yml: version %v, want '2' (what rancher-compose loads)", file["version"])
	}
	for k := range file {
		if !slices.Contains([]string{"version", "services", "volumes", "networks"}, k) {
			t.Errorf("docker-compose.yml: top-level %q is not in compose format 2", k)
		}
	}
	if err := schema.Validate(asJSON(t, file["services"])); err != nil {
		t.Errorf("docker-compose.yml fails libcompose's format-2 schema: %v", err)
	}

	services, _ := file["services"].(map[string]any)
	svc, _ := services["rancher-ecr-credentials"].(map[string]any)
	if svc == nil {
		t.Fatal("docker-compose.yml: no rancher-ecr-credentials service")
	}
	labels, _ := svc["labels"].(map[string]any)
	if labels["io.rancher.container.create_agent"] != "true" || labels["io.rancher.container.agent.role"] != "environment" {
		t.Errorf("labels %v: want the agent labels that make Rancher inject CATTLE_URL and its key", labels)
	}
	env := map[string]string{}
	for k, v := range svc["environment"].(map[string]any) {
		s, ok := v.(string)
		if !ok {
			t.Errorf("environment %s: %v is not a string", k, v)
		}
		env[k] = s
	}
	known := map[string]bool{}
	for _, s := range settings() {
		known[s.env] = !s.noEnv
	}
	for _, v := range sdkVariables {
		known[v] = true
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !known[k] {
			t.Errorf("environment sets %s, which the binary does not know", k)
		}
	}
	// As Rancher runs it: the agent labels add the URL and key.
	cfg, err := ParseConfig(nil, envOf(with(with(with(env, "CATTLE_URL", "http://rancher.example.com:8080/v1"), "CATTLE_ACCESS_KEY", "a"), "CATTLE_SECRET_KEY", "s")))
	if err != nil {
		t.Errorf("the stack's environment with the default answers does not parse: %v", err)
	}
	// No stop_grace_period in Rancher 1.x: Docker's default 10 s must cover a run in flight.
	if cfg.ShutdownTimeout >= 10*time.Second {
		t.Errorf("SHUTDOWN_TIMEOUT %s: Docker stops the container after 10 s", cfg.ShutdownTimeout)
	}

	rs, ok := rc.Services["rancher-ecr-credentials"]
	if !ok || rs.Scale != 1 {
		t.Errorf("rancher-compose.yml: want the service at scale 1 (one writer per environment), got %+v", rc.Services)
	}
	if hc := rs.HealthCheck; hc == nil || hc.Port != cfg.ListenPort || !regexp.MustCompile(`^GET "?/healthz"? `).MatchString(hc.RequestLine) {
		t.Errorf("rancher-compose.yml health_check %+v: want GET /healthz on LISTEN_PORT %d", hc, cfg.ListenPort)
	}
}

// The plain docker-compose.yaml uses what rancher-compose predates: the same
// validator must reject it, or it proves nothing.
func TestRancherCatalog_ValidatorRejectsModernCompose(t *testing.T) {
	t.Parallel()
	var raw map[string]any
	readYAML(t, "../docker-compose.yaml", &raw)
	err := libcomposeV2(t).Validate(asJSON(t, raw["services"]))
	if err == nil || !strings.Contains(err.Error(), "healthcheck") {
		t.Errorf("libcompose's schema accepted docker-compose.yaml (or for another reason): %v", err)
	}
	if _, ok := raw["secrets"]; !ok {
		t.Error("docker-compose.yaml has no top-level secrets any more: update this test")
	}
}
