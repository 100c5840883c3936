package deploy_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
)

// TestDockerfile checks what the image promises: a multi-stage static build with
// the version stamped, a non-root FROM scratch final stage that copies the binary
// from the "binaries" stage (which scripts/image.sh replaces with its own build
// context), exec-form entrypoint, and a HEALTHCHECK that runs the binary's own
// healthcheck. scripts/image-test.sh checks the built image itself.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := testbin.ReadDockerfile(t)
	var froms []string
	var final []testbin.Instruction
	for _, in := range ins {
		if in.Cmd == "FROM" {
			froms = append(froms, in.Args)
			final = nil
		}
		final = append(final, in)
	}
	if len(froms) < 2 {
		t.Fatalf("FROM %v: want a multi-stage build", froms)
	}
	// One Dockerfile for every platform: the build stage runs natively and
	// cross-compiles for the target platform.
	if !strings.HasPrefix(froms[0], "--platform=$BUILDPLATFORM ") {
		t.Errorf("build stage FROM %s: want --platform=$BUILDPLATFORM (cross-compile, no emulation)", froms[0])
	}
	if !slices.Contains(ins, testbin.Instruction{Cmd: "ARG", Args: "TARGETOS TARGETARCH"}) {
		t.Error("the build stage lacks ARG TARGETOS TARGETARCH")
	}
	if last := froms[len(froms)-1]; last != "scratch" {
		t.Errorf("final stage FROM %s: want scratch (nothing to pull: scripts/image.sh builds offline)", last)
	}
	if !slices.Contains(froms, "scratch AS binaries") {
		t.Errorf("FROM %v: no stage \"binaries\" (the build context scripts/image.sh passes replaces it)", froms)
	}
	if !slices.Contains(final, testbin.Instruction{Cmd: "COPY", Args: "--from=binaries /${TARGETOS}-${TARGETARCH}/rancher-ecr-credentials /rancher-ecr-credentials"}) {
		t.Error("the final stage does not COPY --from=binaries /${TARGETOS}-${TARGETARCH}/rancher-ecr-credentials")
	}
	build := testbin.BuildCommand(t)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.commit=${REVISION}", "-X main.date=${CREATED}", "netgo",
		"GOOS=${TARGETOS}", "GOARCH=${TARGETARCH}"} {
		if !strings.Contains(strings.Join(build, " "), want) {
			t.Errorf("build command %q lacks %s", build, want)
		}
	}
	var user, entry, health string
	labels := map[string]string{}
	for _, in := range final {
		switch in.Cmd {
		case "LABEL":
			for _, w := range testbin.SplitWords(in.Args) {
				k, v, _ := strings.Cut(w, "=")
				labels[k] = v
			}
		case "USER":
			user = in.Args
		case "ENTRYPOINT":
			entry = in.Args
		case "HEALTHCHECK":
			health = in.Args
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("final USER %q: want a non-root user", user)
	}
	for k, want := range map[string]string{"source": "https://github.com/rancher-ecr-credentials/rancher-ecr-credentials",
		"licenses": "Apache-2.0", "title": "rancher-ecr-credentials", "version": "${VERSION}", "revision": "${REVISION}", "created": "${CREATED}"} {
		if got := labels["org.opencontainers.image."+k]; got != want {
			t.Errorf("LABEL org.opencontainers.image.%s = %q, want %q", k, got, want)
		}
	}
	if !slices.ContainsFunc(final, func(in testbin.Instruction) bool { return in.Cmd == "ARG" && strings.Contains(in.Args, "REVISION") }) {
		t.Error("the final stage does not declare ARG VERSION REVISION CREATED, so its labels would be empty")
	}
	if labels["org.opencontainers.image.description"] == "" {
		t.Error("LABEL org.opencontainers.image.description is missing")
	}
	var ep []string
	if err := json.Unmarshal([]byte(entry), &ep); err != nil || len(ep) != 1 || ep[0] != "/rancher-ecr-credentials" {
		t.Errorf("ENTRYPOINT %s: want exec form [\"/rancher-ecr-credentials\"]", entry)
	}
	_, cmd, ok := strings.Cut(health, "CMD ")
	var hc []string
	if !ok || json.Unmarshal([]byte(cmd), &hc) != nil || !slices.Equal(hc, []string{"/rancher-ecr-credentials", "healthcheck"}) {
		t.Errorf("HEALTHCHECK %s: want CMD [\"/rancher-ecr-credentials\", \"healthcheck\"]", health)
	}
}

// TestImageScript_BuildCommand checks that scripts/image.sh compiles with the
// Dockerfile's own go build command (the output path aside) and hands the binaries
// to podman in the layout and under the name the Dockerfile's final stage reads.
func TestImageScript_BuildCommand(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../scripts/image.sh")
	if err != nil {
		t.Fatal(err)
	}
	script := strings.NewReplacer("\\\n", " ", "\t", " ").Replace(string(b))
	var line string
	for _, l := range strings.Split(script, "\n") {
		if _, cmd, ok := strings.Cut(l, "CGO_ENABLED=0"); ok && strings.Contains(cmd, " go build ") && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			line = cmd
		}
	}
	got := testbin.SplitWords("CGO_ENABLED=0" + line)
	out := ""
	if i := slices.Index(got, "-o"); i >= 0 && i+1 < len(got) {
		out = got[i+1]
		got = slices.Delete(got, i, i+2)
	}
	want := testbin.BuildCommand(t)
	if i := slices.Index(want, "-o"); i >= 0 {
		want = slices.Delete(want, i, i+2)
	}
	if !slices.Equal(got, want) {
		t.Errorf("scripts/image.sh builds with\n  %q\nthe Dockerfile with\n  %q", got, want)
	}
	if !strings.HasSuffix(out, "/binaries/$TARGETOS-$TARGETARCH/rancher-ecr-credentials") {
		t.Errorf("scripts/image.sh writes the binary to %q, not <binaries>/$TARGETOS-$TARGETARCH/rancher-ecr-credentials", out)
	}
	if !strings.Contains(script, `--build-context "binaries=$tmp/binaries"`) {
		t.Error("scripts/image.sh does not pass its binaries as the build context \"binaries\"")
	}
}

// sdkVariables are AWS SDK settings a compose file may set; the binary passes
// them to the SDK untouched.
var sdkVariables = []string{"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_DEFAULT_REGION", "HTTPS_PROXY", "NO_PROXY"}

// loadCompose loads a compose file with the real compose loader, interpolating from env.
func loadCompose(t *testing.T, name string, content []byte, env map[string]string) (*types.Project, error) {
	t.Helper()
	return loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  "..",
		ConfigFiles: []types.ConfigFile{{Filename: name, Content: content}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("rancher-ecr-credentials", true) })
}

// TestCompose loads docker-compose.yaml, the file for running the daemon outside Rancher, with the real
// compose loader and checks every promise: it refuses to start without CATTLE_URL, runs the image
// scripts/image.sh names (or the one RANCHER_ECR_CREDENTIALS_IMAGE names), known variables only, the key
// pair as secrets wired to the …_FILE variables, no Rancher agent labels (nothing outside Rancher
// honours them), the healthcheck, a read-only non-root container, and a stop grace period above the
// shutdown timeout.
func TestCompose(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadCompose(t, "docker-compose.yaml", b, nil); err == nil || !strings.Contains(err.Error(), "set CATTLE_URL to the Rancher API URL") {
		t.Errorf("docker-compose.yaml without CATTLE_URL: err = %v, want it to ask for CATTLE_URL", err)
	}
	known := map[string]bool{}
	for _, s := range settings() {
		known[s.env] = !s.noEnv
	}
	for _, v := range sdkVariables {
		known[v] = true
	}
	url := "https://rancher.example.com/v2-beta/projects/1a5"
	for _, tt := range []struct{ name, image, wantImage string }{
		{"DefaultImage", "", "rancher-ecr-credentials:latest"},
		{"ImageFromEnvironment", "registry.example.com/rancher-ecr-credentials:v1.2.3", "registry.example.com/rancher-ecr-credentials:v1.2.3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"CATTLE_URL": url}
			if tt.image != "" {
				env["RANCHER_ECR_CREDENTIALS_IMAGE"] = tt.image
			}
			p, err := loadCompose(t, "docker-compose.yaml", b, env)
			if err != nil {
				t.Fatalf("compose loader: %v", err)
			}
			svc, ok := p.Services["rancher-ecr-credentials"]
			if !ok {
				t.Fatalf("no rancher-ecr-credentials service")
			}
			if svc.Image != tt.wantImage {
				t.Errorf("image %q, want %q", svc.Image, tt.wantImage)
			}
			cfg := map[string]string{}
			for k, v := range svc.Environment {
				if !known[k] {
					t.Errorf("environment sets %s, which the binary does not know", k)
				}
				if v != nil {
					cfg[k] = *v
				}
			}
			if cfg["CATTLE_URL"] != url || cfg["CATTLE_ACCESS_KEY_FILE"] == "" || cfg["CATTLE_SECRET_KEY_FILE"] == "" {
				t.Errorf("environment %v: want CATTLE_URL from the environment and the key pair from files", cfg)
			}
			if _, err := ParseConfig(nil, envOf(cfg)); err != nil && !strings.Contains(err.Error(), "_FILE: cannot read /run/secrets/") {
				t.Errorf("the compose environment does not parse: %v", err)
			}
			for k, v := range cfg {
				if strings.HasSuffix(k, "_FILE") {
					secret := strings.TrimPrefix(v, "/run/secrets/")
					if _, ok := p.Secrets[secret]; !ok || !slices.ContainsFunc(svc.Secrets, func(s types.ServiceSecretConfig) bool { return s.Source == secret }) {
						t.Errorf("%s=%s is not a secret the service mounts", k, v)
					}
				}
			}
			for l := range svc.Labels {
				if strings.HasPrefix(l, "io.rancher.") {
					t.Errorf("label %s: Rancher's labels do nothing outside Rancher (the catalog template is for inside)", l)
				}
			}
			if svc.HealthCheck == nil || !slices.Equal(svc.HealthCheck.Test, []string{"CMD", "/rancher-ecr-credentials", "healthcheck"}) {
				t.Errorf("healthcheck = %+v", svc.HealthCheck)
			}
			if !svc.ReadOnly {
				t.Error("root filesystem is not read-only")
			}
			if u, _, _ := strings.Cut(svc.User, ":"); u == "" || u == "0" || u == "root" {
				t.Errorf("user %q is not non-root", svc.User)
			}
			shutdown := DefaultShutdownTimeout
			if s := cfg["SHUTDOWN_TIMEOUT"]; s != "" {
				shutdown, _ = time.ParseDuration(s)
			}
			if svc.StopGracePeriod == nil || time.Duration(*svc.StopGracePeriod) <= shutdown {
				t.Errorf("stop_grace_period %v is not above SHUTDOWN_TIMEOUT %s", svc.StopGracePeriod, shutdown)
			}
			if svc.Restart != "unless-stopped" {
				t.Errorf("restart = %q", svc.Restart)
			}
		})
	}
}
