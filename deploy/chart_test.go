package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const (
	chartDir     = "chart/rancher-ecr-credentials"
	manifestFile = "kubernetes/rancher-ecr-credentials.yaml"
	chartRelease = "rancher-ecr-credentials"
	chartNS      = "rancher-ecr-credentials"
	// kubeVersion is the version helm renders for: the test apiserver's. A helm built with go install
	// (not helm's Makefile) would otherwise assume Kubernetes 1.20.
	kubeVersion = "v1.34.2"
	// testImage is the image the tests install: the chart has no default (none is published).
	testImage = "registry.example.com/rancher-ecr-credentials"
	// manifestImage is the placeholder the plain manifest names: an invalid reference, so a manifest
	// applied unedited fails at once with InvalidImageName instead of trying to pull.
	manifestImage = "<registry>/rancher-ecr-credentials"
)

// manifestHeader starts the committed plain manifest; the rest is the output of the command it names.
const manifestHeader = `# rancher-ecr-credentials for kubectl apply -f: the Helm chart rendered with its default values
# (mode namespaces, every namespace but kube-system, kube-public and kube-node-lease). Generated, do not
# edit: change the chart, then run
#   UPDATE_MANIFEST=1 go test -run TestChart_Manifest .
# which writes this header and the output of
#   helm template rancher-ecr-credentials deploy/chart/rancher-ecr-credentials --namespace rancher-ecr-credentials --kube-version v1.34.2 \
#     --set createNamespace=true --set image.repository=<registry>/rancher-ecr-credentials
# Before applying: replace <registry> in the Deployment's image with the registry you pushed the image to
# (scripts/image.sh 0.1.0, then podman manifest push --all rancher-ecr-credentials:0.1.0
# docker://<registry>/rancher-ecr-credentials:0.1.0), set AWS_REGION (unless IRSA or Pod Identity sets it)
# and give the Pod an AWS identity (README, "Kubernetes").
`

// TestChart_Lint runs helm lint on the chart, for each mode (Rancher: through its API, and in the cluster).
func TestChart_Lint(t *testing.T) {
	t.Parallel()
	for _, set := range [][]string{nil, rancherProxySet, {"mode=rancherProjectSecrets", "rancher.projects={local:p-abcde}", "rancher.inCluster=true", "rancher.backingNamespaces={local-p-abcde}"},
		{"mode=consumers", "consumers={all}", "consumerNamespaces={argocd,cattle-system}"}, {"consumers={labelled}"}} {
		args := []string{"lint", "--strict", "--kube-version", kubeVersion, chartDir, "--set", "image.repository=" + testImage}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		if out, err := helm(t, args...); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	}
}

// TestChart_Render checks what mode namespaces renders: the hardened Pod, the probes, the
// least-privilege rules and the daemon's variables. The Rancher modes: chart_rancher_test.go.
func TestChart_Render(t *testing.T) {
	t.Parallel()
	secrets := []string{"/secrets:create", "/secrets:get", "/secrets:update"}
	namespaces := []string{"/namespaces:get", "/namespaces:list", "/namespaces:watch"}
	serviceAccounts := []string{"/serviceaccounts:get", "/serviceaccounts:list", "/serviceaccounts:update", "/serviceaccounts:watch"}
	leases := []string{"coordination.k8s.io/leases:create", "coordination.k8s.io/leases:get[rancher-ecr-credentials]", "coordination.k8s.io/leases:update[rancher-ecr-credentials]"}
	tests := []struct {
		name       string
		set        []string
		clusterRol []string
		leaseRole  []string // nil: no Role
		env        map[string]string
		noEnv      []string
	}{
		{
			name:       "defaults",
			clusterRol: slices.Concat(namespaces, secrets),
			env:        map[string]string{"KUBE_NAMESPACES": "all", "LOG_FORMAT": "json", "LISTEN_PORT": "8080"},
			noEnv:      []string{"LEADER_ELECTION", "KUBE_SERVICE_ACCOUNTS", "AWS_ACCESS_KEY_ID", "RANCHER_PROJECTS", "AWS_REGION", "AWS_ECR_PUBLIC"},
		},
		{
			name: "namespaces, two replicas, service accounts, static keys",
			set: []string{"replicaCount=2", "kube.serviceAccounts={default,builder}", "kube.namespaces={team-*,ci}",
				"kube.namespaceSelector=ecr=true", "aws.region=eu-west-1", "aws.registryIds={123456789012,210987654321:us-east-1}",
				"aws.existingSecret=aws-keys", "refreshSchedule=@every 4h", "kube.secretName=ecr",
				"aws.allowedRoleArns={arn:aws:iam::123456789012:role/team-*,arn:aws:iam::210987654321:role/ci}", "aws.roleExternalId=ext-1", "aws.ecrPublic=true"},
			clusterRol: slices.Concat(namespaces, secrets, serviceAccounts),
			leaseRole:  leases,
			env: map[string]string{
				"KUBE_NAMESPACES": "team-*,ci", "KUBE_NAMESPACE_SELECTOR": "ecr=true", "KUBE_SERVICE_ACCOUNTS": "default,builder",
				"KUBE_SECRET_NAME": "ecr", "LEADER_ELECTION": "true", "LEADER_ELECTION_NAMESPACE": chartNS,
				"AWS_REGION": "eu-west-1", "AWS_ECR_REGISTRY_IDS": "123456789012,210987654321:us-east-1",
				"AWS_ACCESS_KEY_ID": "aws-keys/AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "aws-keys/AWS_SECRET_ACCESS_KEY",
				"REFRESH_SCHEDULE": "@every 4h", "AWS_ROLE_EXTERNAL_ID": "ext-1", "AWS_ECR_PUBLIC": "true",
				"AWS_ALLOWED_ROLE_ARNS": "arn:aws:iam::123456789012:role/team-*,arn:aws:iam::210987654321:role/ci",
			},
		},
		{
			name:       "two replicas with leader election off",
			set:        []string{"replicaCount=2", "leaderElection.enabled=false"},
			clusterRol: slices.Concat(namespaces, secrets),
			noEnv:      []string{"LEADER_ELECTION"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, d := renderHardened(t, tt.set...)

			if got, want := sortedRules(only[*rbacv1.ClusterRole](t, r).Rules), slices.Sorted(slices.Values(tt.clusterRol)); !slices.Equal(got, want) {
				t.Errorf("ClusterRole rules:\n got %v\nwant %v", got, want)
			}
			roles := r.roles()
			switch {
			case tt.leaseRole == nil && len(roles) > 0:
				t.Errorf("Roles rendered without leader election: %v", roles)
			case tt.leaseRole != nil && len(roles) != 1:
				t.Errorf("want one leader-election Role, got %d", len(roles))
			case tt.leaseRole != nil:
				if got := sortedRules(roles[0].Rules); !slices.Equal(got, tt.leaseRole) {
					t.Errorf("leader-election Role rules:\n got %v\nwant %v", got, tt.leaseRole)
				}
				if ns := containerEnv(d)["LEADER_ELECTION_NAMESPACE"]; roles[0].Namespace != ns {
					t.Errorf("leader-election Role in namespace %q, the daemon's Lease in %q", roles[0].Namespace, ns)
				}
			}

			checkEnv(t, d, tt.env, tt.noEnv)
		})
	}
}

// checkEnv checks the container's variables: each one a setting of the daemon, those of want set
// to their values, those of unset not set.
func checkEnv(t *testing.T, d *appsv1.Deployment, want map[string]string, unset []string) {
	t.Helper()
	env := containerEnv(d)
	known := knownEnv(t)
	for name := range env {
		if !known[name] {
			t.Errorf("the chart sets %s, which is not a setting of the daemon (--help)", name)
		}
	}
	for name, w := range want {
		if got, ok := env[name]; !ok || got != w {
			t.Errorf("env %s = %q (set: %v), want %q", name, got, ok, w)
		}
	}
	for _, name := range unset {
		if _, ok := env[name]; ok {
			t.Errorf("env %s is set (%q), want unset", name, env[name])
		}
	}
}

// renderHardened renders the chart with the --set values, checks its Pod is hardened, and returns
// what it rendered and its Deployment.
func renderHardened(t *testing.T, set ...string) (rendered, *appsv1.Deployment) {
	t.Helper()
	out, err := renderChart(t, chartRelease, set...)
	if err != nil {
		t.Fatal(err)
	}
	r := decodeManifest(t, out)
	d := only[*appsv1.Deployment](t, r)
	checkPodHardened(t, d)
	return r, d
}

func checkPodHardened(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser != 65532 ||
		pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", pod.SecurityContext)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("container securityContext %+v: want no privilege escalation, read-only root, drop ALL", sc)
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "http" {
			t.Errorf("probe %+v: want GET %s on port http", probe, want)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("container ports %+v: want http 8080", c.Ports)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want memory request and limit", c.Resources)
	}
	if pod.ServiceAccountName == "" || pod.ServiceAccountName == "default" {
		t.Errorf("serviceAccountName %q: want the chart's own", pod.ServiceAccountName)
	}
}

// TestChart_Values checks values that fail or add: no image (the message says how to build and push
// one), a mode that does not exist, project mode without projects, a comma left unescaped in --set,
// the IRSA annotation, the ServiceMonitor.
func TestChart_Values(t *testing.T) {
	t.Parallel()
	for set, want := range map[string]string{
		"image.repository=":                      "image.repository: set the image to run. None is published: build it and push it to a registry your nodes can pull from",
		"image.tag=v2.0.0,image.repository=":     "scripts/image.sh v2.0.0\n  podman manifest push --all rancher-ecr-credentials:v2.0.0 docker://<registry>/rancher-ecr-credentials:v2.0.0",
		"mode=rancher":                           "mode: \"rancher\" is not a mode",
		"serviceAccount.create=false":            "serviceAccount.name: name the existing ServiceAccount",
		"kube.namespaceSelector=env=prod,team=a": `values: "team" is not a value of this chart. With helm --set, a comma separates two values: escape a comma`,
	} {
		_, err := renderChart(t, chartRelease, set)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s: err = %v, want it to say %q", set, err, want)
		}
	}

	out, err := renderChart(t, chartRelease, "serviceAccount.roleArn=arn:aws:iam::123456789012:role/ecr-reader", "serviceMonitor.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	r := decodeManifest(t, out)
	if got := only[*corev1.ServiceAccount](t, r).Annotations["eks.amazonaws.com/role-arn"]; got != "arn:aws:iam::123456789012:role/ecr-reader" {
		t.Errorf("IRSA annotation = %q", got)
	}
	if !slices.Contains(r.kinds(), "ServiceMonitor") {
		t.Errorf("kinds %v: no ServiceMonitor", r.kinds())
	}
	out, err = renderChart(t, chartRelease, `kube.namespaceSelector=env=prod\,team=a`)
	if err != nil {
		t.Fatal(err)
	}
	if got := containerEnv(only[*appsv1.Deployment](t, decodeManifest(t, out)))["KUBE_NAMESPACE_SELECTOR"]; got != "env=prod,team=a" {
		t.Errorf("an escaped comma under --set: KUBE_NAMESPACE_SELECTOR=%q, want env=prod,team=a", got)
	}
}

// TestChart_Manifest checks that the committed plain manifest is the chart rendered with its defaults.
func TestChart_Manifest(t *testing.T) {
	t.Parallel()
	out, err := renderChart(t, chartRelease, "createNamespace=true", "image.repository="+manifestImage)
	if err != nil {
		t.Fatal(err)
	}
	want := manifestHeader + out
	if os.Getenv("UPDATE_MANIFEST") == "1" {
		if err := os.WriteFile(manifestFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is not the chart rendered with its defaults; regenerate it with\n  UPDATE_MANIFEST=1 go test -run TestChart_Manifest .", manifestFile)
	}
	r := decodeManifest(t, string(got))
	if kinds := r.kinds(); kinds[0] != "Namespace" {
		t.Errorf("the manifest starts with %s, want the Namespace (kubectl apply creates in order)", kinds[0])
	}
}

// TestChart_Replicas checks how two replicas are kept apart and drained: a preferred anti-affinity on
// the node by default (required with podAntiAffinity=hard, none with "", replaced by affinity), none
// with one replica, and a PodDisruptionBudget that lets replicas that are not ready be evicted.
func TestChart_Replicas(t *testing.T) {
	t.Parallel()
	nodeAffinity := "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]."
	for _, tt := range []struct {
		set                 []string
		preferred, required bool
	}{
		{set: nil},
		{set: []string{"replicaCount=2"}, preferred: true},
		{set: []string{"replicaCount=2", "podAntiAffinity=hard"}, required: true},
		{set: []string{"replicaCount=2", "podAntiAffinity="}},
		{set: []string{"replicaCount=2", nodeAffinity + "weight=1", nodeAffinity + "preference.matchExpressions[0].key=pool", nodeAffinity + "preference.matchExpressions[0].operator=Exists"}},
	} {
		t.Run(strings.Join(tt.set, ","), func(t *testing.T) {
			t.Parallel()
			out, err := renderChart(t, chartRelease, tt.set...)
			if err != nil {
				t.Fatal(err)
			}
			r := decodeManifest(t, out)
			pod := only[*appsv1.Deployment](t, r).Spec.Template
			var terms []corev1.PodAffinityTerm
			if a := pod.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
				terms = a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
				for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
					terms = append(terms, w.PodAffinityTerm)
				}
				if got := len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0; got != tt.preferred {
					t.Errorf("preferred pod anti-affinity: %v, want %v", got, tt.preferred)
				}
				if got := len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0; got != tt.required {
					t.Errorf("required pod anti-affinity: %v, want %v", got, tt.required)
				}
			} else if tt.preferred || tt.required {
				t.Errorf("affinity %+v: want a pod anti-affinity", pod.Spec.Affinity)
			}
			for _, term := range terms {
				sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
				if err != nil || term.TopologyKey != "kubernetes.io/hostname" || !sel.Matches(labels.Set(pod.Labels)) {
					t.Errorf("anti-affinity term %+v: want topologyKey kubernetes.io/hostname selecting the replicas (%v)", term, err)
				}
			}
			if strings.Contains(strings.Join(tt.set, ","), nodeAffinity) && (pod.Spec.Affinity == nil || pod.Spec.Affinity.NodeAffinity == nil) {
				t.Errorf("affinity %+v: the affinity value is not rendered", pod.Spec.Affinity)
			}
			if len(tt.set) == 0 {
				if slices.Contains(r.kinds(), "PodDisruptionBudget") {
					t.Error("one replica: a PodDisruptionBudget would block every drain")
				}
				return
			}
			pdb := only[*policyv1.PodDisruptionBudget](t, r)
			if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
				t.Errorf("PodDisruptionBudget unhealthyPodEvictionPolicy %v, want AlwaysAllow", p)
			}
		})
	}
}

// rancherQuestionTypes are the question types Rancher's Apps UI renders: knownTypes and the prefixes
// componentForQuestion accepts in rancher/dashboard
// https://github.com/rancher/dashboard/blob/master/shell/components/Questions/index.vue. Any other type
// falls back to a plain text box (a list then arrives as one string).
var rancherQuestionTypes = []string{"string", "hostname", "multiline", "password", "text", "boolean", "enum", "int",
	"float", "questionmap", "reference", "configmap", "secret", "storageclass", "pvc", "cloudcredential", "radio", "yaml"}

// TestChart_Questions checks questions.yaml, the chart's Rancher install form: each type is one
// Rancher renders, each variable a value of values.yaml, and the image can be set there.
func TestChart_Questions(t *testing.T) {
	t.Parallel()
	var form struct {
		Questions []struct{ Variable, Label, Type string } `yaml:"questions"`
	}
	readYAML(t, filepath.Join(chartDir, "questions.yaml"), &form)
	var values map[string]any
	readYAML(t, filepath.Join(chartDir, "values.yaml"), &values)
	var vars []string
	for _, q := range form.Questions {
		vars = append(vars, q.Variable)
		typ := strings.ToLower(q.Type)
		if !slices.Contains(rancherQuestionTypes, typ) && !strings.HasPrefix(typ, "array[") && !strings.HasPrefix(typ, "map[") && !strings.HasPrefix(typ, "reference[") {
			t.Errorf("question %s: type %q is not one Rancher's Apps UI renders (%v, array[…], map[…], reference[…])", q.Variable, q.Type, rancherQuestionTypes)
		}
		var v any = values
		for _, k := range strings.Split(q.Variable, ".") {
			m, _ := v.(map[string]any)
			next, ok := m[k]
			if !ok {
				t.Errorf("question %s: not a value in values.yaml", q.Variable)
				break
			}
			v = next
		}
		if q.Label == "" {
			t.Errorf("question %s: no label", q.Variable)
		}
	}
	for _, want := range []string{"image.repository", "image.tag"} {
		if !slices.Contains(vars, want) {
			t.Errorf("questions.yaml asks nothing for %s", want)
		}
	}
}
