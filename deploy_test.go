package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct{ cmd, args string }

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || line == "" && cur == "" {
			continue
		}
		cur += " " + strings.TrimSuffix(line, "\\")
		if strings.HasSuffix(line, "\\") {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur = ""
	}
	return out
}

// TestDockerfile checks what the image promises: a multi-stage static build with
// the version stamped, a non-root distroless final stage, exec-form entrypoint,
// and a HEALTHCHECK that runs the binary's own healthcheck.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := readDockerfile(t)
	var froms []string
	var final []instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in.args)
			final = nil
		}
		final = append(final, in)
	}
	if len(froms) < 2 {
		t.Fatalf("FROM %v: want a multi-stage build", froms)
	}
	if last := froms[len(froms)-1]; !strings.Contains(last, "distroless/static") && last != "scratch" {
		t.Errorf("final stage FROM %s: want distroless static or scratch", last)
	}
	build := buildCommand(t)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "netgo"} {
		if !strings.Contains(strings.Join(build, " "), want) {
			t.Errorf("build command %q lacks %s", build, want)
		}
	}
	var user, entry, health string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "HEALTHCHECK":
			health = in.args
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("final USER %q: want a non-root user", user)
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

// buildCommand returns the Dockerfile's go build command line as arguments.
func buildCommand(t *testing.T) []string {
	t.Helper()
	for _, in := range readDockerfile(t) {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		_, line, _ := strings.Cut(in.args, "CGO_ENABLED=0")
		var args []string
		var cur strings.Builder
		quoted := false
		for _, r := range "CGO_ENABLED=0" + line {
			switch {
			case r == '"':
				quoted = !quoted
			case r == ' ' && !quoted:
				if cur.Len() > 0 {
					args = append(args, cur.String())
					cur.Reset()
				}
			default:
				cur.WriteRune(r)
			}
		}
		if cur.Len() > 0 {
			args = append(args, cur.String())
		}
		return args
	}
	t.Fatal("no go build in the Dockerfile")
	return nil
}

// TestBinary builds the binary exactly as the Dockerfile does and checks it: a
// static ELF at most 32 MiB (the budget with client-go) with the version stamped, whose healthcheck subcommand
// (the image's HEALTHCHECK) tells a live daemon from a dead one, and which stops
// cleanly on SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	args := buildCommand(t)
	bin := filepath.Join(t.TempDir(), "rancher-ecr-credentials")
	var env []string
	for len(args) > 0 && strings.Contains(args[0], "=") {
		env, args = append(env, args[0]), args[1:]
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "${VERSION}", "v9.9.9-test")
		if a == "/out/rancher-ecr-credentials" {
			args[i] = bin
		}
	}
	cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}

	t.Run("Static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("binary has a %v program header: not static", p.Type)
			}
		}
		if fi, _ := os.Stat(bin); fi.Size() > 32<<20 {
			t.Errorf("binary is %d MB, want at most 32 MiB", fi.Size()>>20)
		}
	})
	t.Run("Version", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), bin, "--version").Output()
		if err != nil || strings.TrimSpace(string(out)) != "rancher-ecr-credentials v9.9.9-test" {
			t.Errorf("--version = %q, %v", out, err)
		}
	})
	t.Run("HealthcheckAndSIGTERM", func(t *testing.T) {
		port := freePort(t)
		health := func() error {
			c := exec.CommandContext(t.Context(), bin, "healthcheck")
			c.Env = []string{"LISTEN_PORT=" + port}
			return c.Run()
		}
		if err := health(); err == nil {
			t.Fatal("healthcheck passed with no daemon")
		}
		d := exec.CommandContext(t.Context(), bin, "--demo", "--listen-port", port)
		d.Env = []string{"PATH=" + os.Getenv("PATH")}
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- d.Wait() }()
		t.Cleanup(func() { _ = d.Process.Kill() })

		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for health() != nil {
			select {
			case <-ctx.Done():
				t.Fatal("healthcheck never passed against the running daemon")
			case err := <-exited:
				t.Fatalf("daemon exited: %v", err)
			case <-tick.C:
			}
		}
		if err := d.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit after SIGTERM: %v, want 0", err)
			}
		case <-ctx.Done():
			t.Fatal("daemon did not stop on SIGTERM")
		}
		if err := health(); err == nil {
			t.Error("healthcheck passed after the daemon stopped")
		}
	})
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// sdkVariables are AWS SDK settings a compose file may set; the binary passes
// them to the SDK untouched.
var sdkVariables = []string{"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_DEFAULT_REGION", "HTTPS_PROXY", "NO_PROXY"}

func loadCompose(t *testing.T, name string, content []byte) *types.Project {
	t.Helper()
	p, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  ".",
		ConfigFiles: []types.ConfigFile{{Filename: name, Content: content}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("rancher-ecr-credentials", true) })
	if err != nil {
		t.Fatalf("compose loader: %s: %v", name, err)
	}
	return p
}

// TestCompose loads docker-compose.yaml, and the commented outside-Rancher
// example in it, with the real compose loader and checks every promise: known
// variables only, secrets wired to the …_FILE variables, the healthcheck, the
// Rancher agent labels, a read-only non-root container, and a stop grace period
// above the shutdown timeout.
func TestCompose(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(b), "# --- outside-rancher example ---\n")
	example, _, ok2 := strings.Cut(example, "# --- end ---")
	if !ok || !ok2 {
		t.Fatal("docker-compose.yaml lacks the commented outside-Rancher example")
	}
	var uncommented []string
	for _, l := range strings.Split(example, "\n") {
		uncommented = append(uncommented, strings.TrimPrefix(strings.TrimPrefix(l, "#"), " "))
	}

	known := map[string]bool{}
	for _, s := range settings() {
		known[s.env] = !s.noEnv
	}
	for _, v := range sdkVariables {
		known[v] = true
	}
	for name, content := range map[string][]byte{"docker-compose.yaml": b, "outside-rancher example": []byte(strings.Join(uncommented, "\n"))} {
		t.Run(strings.ReplaceAll(name, " ", "-"), func(t *testing.T) {
			p := loadCompose(t, name, content)
			svc, ok := p.Services["rancher-ecr-credentials"]
			if !ok {
				t.Fatalf("no rancher-ecr-credentials service")
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
			if _, err := ParseConfig(nil, envOf(with(with(with(cfg, "CATTLE_URL", cmpOr(cfg["CATTLE_URL"], "http://rancher.example.com/v1")),
				"CATTLE_ACCESS_KEY", "a"), "CATTLE_SECRET_KEY", "s"))); err != nil && !strings.Contains(err.Error(), "_FILE: cannot read /run/secrets/") {
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
			if name == "docker-compose.yaml" {
				if svc.Restart != "unless-stopped" {
					t.Errorf("restart = %q", svc.Restart)
				}
				if svc.Labels["io.rancher.container.create_agent"] != "true" || svc.Labels["io.rancher.container.agent.role"] != "environment" {
					t.Errorf("labels = %v, want the Rancher agent labels that inject CATTLE_*", svc.Labels)
				}
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
