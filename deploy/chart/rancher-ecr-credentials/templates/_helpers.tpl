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

{{- define "recc.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "recc.checkMode" -}}
{{- if not (has .Values.mode (list "namespaces" "rancherProjectSecrets")) -}}
{{- fail (printf "mode: %q is not a mode; use namespaces or rancherProjectSecrets" .Values.mode) -}}
{{- end -}}
{{- if and (eq .Values.mode "rancherProjectSecrets") (not .Values.rancher.projects) -}}
{{- fail "rancher.projects: name the projects to write into (<clusterId>:<projectId>, or all) with mode rancherProjectSecrets" -}}
{{- end -}}
{{- end -}}
