{{- define "recc.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "recc.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "recc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "recc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "recc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "recc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "recc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "recc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* "true" when leader election is on: explicitly, or by default with more than one replica. */}}
{{- define "recc.leaderElection" -}}
{{- $v := toString .Values.leaderElection.enabled -}}
{{- if eq $v "true" -}}true
{{- else if and (ne $v "false") (gt (int .Values.replicaCount) 1) -}}true
{{- end -}}
{{- end -}}

{{- define "recc.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace -}}
{{- end -}}

{{- /* No image is published: without one, say how to build and push it rather than render a Pod that
never pulls. */ -}}
{{- define "recc.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if not .Values.image.repository -}}
{{- fail (printf `image.repository: set the image to run. None is published: build it and push it to a registry your nodes can pull from (not only the ECR registry it refreshes, which nothing can pull from before its first run):
  scripts/image.sh %[1]s
  podman manifest push --all rancher-ecr-credentials:%[1]s docker://<registry>/rancher-ecr-credentials:%[1]s
then install with --set image.repository=<registry>/rancher-ecr-credentials --set image.tag=%[1]s (README, "The image").` $tag) -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{- define "recc.checkMode" -}}
{{- /* helm --set splits on unescaped commas: "kube.namespaceSelector=a=1,b=2" sets the selector to
"a=1" and a stray top-level "b". Catch that (and typos) instead of running with half a selector.
Every top-level key of values.yaml, and Rancher's "global" (a key missing here fails the default render). */ -}}
{{- $known := list "mode" "image" "imagePullSecrets" "aws" "kube" "rancher" "refreshSchedule" "logLevel" "logFormat"
  "shutdownTimeout" "retryMinInterval" "retryMaxInterval" "dryRun" "port" "extraEnv" "replicaCount" "createNamespace"
  "leaderElection" "serviceAccount" "rbac" "podAnnotations" "podLabels" "podSecurityContext" "securityContext"
  "resources" "priorityClassName" "nodeSelector" "tolerations" "podAntiAffinity" "affinity" "topologySpreadConstraints"
  "service" "serviceMonitor" "podDisruptionBudget" "consumers" "consumerNamespaces" "global" -}}
{{- range $key, $_ := .Values -}}
{{- if not (has $key $known) -}}
{{- fail (printf `values: %q is not a value of this chart. With helm --set, a comma separates two values: escape a comma inside one as \, (--set 'kube.namespaceSelector=env=prod\,team=a'), or use --set-json or a values file` $key) -}}
{{- end -}}
{{- end -}}
{{- if not (has .Values.mode (list "namespaces" "rancherProjectSecrets" "consumers")) -}}
{{- fail (printf "mode: %q is not a mode; use namespaces, rancherProjectSecrets or consumers" .Values.mode) -}}
{{- end -}}
{{- if and (eq .Values.mode "consumers") (not .Values.consumers) -}}
{{- fail "consumers: name the consumers to keep fresh (labelled, argocd, rancher-apps, or all) with mode consumers" -}}
{{- end -}}
{{- range .Values.consumers -}}
{{- if not (has . (list "labelled" "argocd" "rancher-apps" "all")) -}}
{{- fail (printf "consumers: %q is not a consumer; use labelled, argocd, rancher-apps or all" .) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.mode "rancherProjectSecrets") (not .Values.rancher.projects) -}}
{{- fail "rancher.projects: name the projects to write into (<clusterId>:<projectId>, or all) with mode rancherProjectSecrets" -}}
{{- end -}}
{{- end -}}

{{- /* aws.existingSecret must exist before the Pod starts, or it waits in CreateContainerConfigError.
lookup answers only against a cluster (helm install, upgrade, --dry-run=server); helm template skips it. */ -}}
{{- define "recc.checkAWSSecret" -}}
{{- with .Values.aws.existingSecret -}}
{{- if lookup "v1" "Namespace" "" "kube-system" -}}
{{- $secret := lookup "v1" "Secret" $.Release.Namespace . -}}
{{- $create := printf "kubectl create namespace %[1]s; kubectl -n %[1]s create secret generic %[2]s --from-literal=%[3]s=... --from-literal=%[4]s=... (the namespace and the Secret before helm install: --create-namespace makes the namespace only after this check)" $.Release.Namespace . $.Values.aws.accessKeyIdKey $.Values.aws.secretAccessKeyKey -}}
{{- if not $secret -}}
{{- fail (printf "aws.existingSecret: no Secret %s in namespace %s. Create it first: %s" . $.Release.Namespace $create) -}}
{{- end -}}
{{- range list $.Values.aws.accessKeyIdKey $.Values.aws.secretAccessKeyKey -}}
{{- if not (hasKey (default dict $secret.data) .) -}}
{{- fail (printf "aws.existingSecret: Secret %s/%s has no key %s (it has %s); add it, or name the key in aws.accessKeyIdKey / aws.secretAccessKeyKey" $.Release.Namespace $.Values.aws.existingSecret . (keys (default dict $secret.data) | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "true" when the consumers that watch Secrets by label (labelled, argocd) are on. */}}
{{- define "recc.consumerWatch" -}}
{{- if or (has "all" .Values.consumers) (has "labelled" .Values.consumers) (has "argocd" .Values.consumers) -}}true{{- end -}}
{{- end -}}

{{/* "true" when rancher-apps is on. */}}
{{- define "recc.consumerApps" -}}
{{- if or (has "all" .Values.consumers) (has "rancher-apps" .Values.consumers) -}}true{{- end -}}
{{- end -}}

{{/* "true" when consumerNamespaces are all plain names (not empty, no "all", no glob): then the consumer
Secrets are granted per namespace. */}}
{{- define "recc.consumerByName" -}}
{{- $plain := true -}}
{{- range .Values.consumerNamespaces -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .) -}}{{- $plain = false -}}{{- end -}}
{{- end -}}
{{- if and .Values.consumerNamespaces $plain -}}true{{- end -}}
{{- end -}}
