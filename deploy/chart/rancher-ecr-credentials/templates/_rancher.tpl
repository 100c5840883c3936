{{- /* mode rancherProjectSecrets: Rancher 2.x projects, two ways.
- Through Rancher (the default, rancher.url set): the daemon calls Rancher's API and its proxy to the local
  cluster (/k8s/clusters/local) with a Rancher API token mounted from rancher.token.existingSecret. The
  token's Rancher roles are all it may do; the chart grants nothing in the cluster it runs in (leader
  election aside), and the Pod gets no ServiceAccount token unless leader election needs one.
- Inside Rancher's local cluster (rancher.inCluster=true, no rancher.url): the chart's ServiceAccount, with
  get on each named project and the Secret verbs in each project's backing namespace (rbac-rancher.yaml).
*/ -}}

{{/* "true" when the daemon reaches Rancher through its API with a token. */}}
{{- define "recc.rancherProxy" -}}
{{- if and (eq .Values.mode "rancherProjectSecrets") (not .Values.rancher.inCluster) -}}true{{- end -}}
{{- end -}}

{{/* "true" when the Pod needs its ServiceAccount token: every mode but Rancher through its API without
leader election. */}}
{{- define "recc.kubeAPI" -}}
{{- if or (not (include "recc.rancherProxy" .)) (include "recc.leaderElection" .) -}}true{{- end -}}
{{- end -}}

{{- define "recc.rancherTokenDir" -}}/var/run/secrets/rancher-ecr-credentials/rancher{{- end -}}
{{- define "recc.rancherCADir" -}}/etc/rancher-ecr-credentials/rancher-ca{{- end -}}

{{- define "recc.checkRancher" -}}
{{- if eq .Values.mode "rancherProjectSecrets" -}}
{{- $r := .Values.rancher -}}
{{- $ns := .Release.Namespace -}}
{{- $cluster := lookup "v1" "Namespace" "" "kube-system" -}}
{{- if $r.inCluster -}}
{{- if $r.url -}}
{{- fail "rancher.inCluster=true writes as the chart's ServiceAccount inside Rancher's local cluster, rancher.url through Rancher's API with a token: set one of them" -}}
{{- end -}}
{{- else -}}
{{- if not $r.url -}}
{{- fail `rancher.url: set Rancher's API URL (https://<rancher>/v3) and rancher.token.existingSecret, a Secret holding a Rancher API token whose user is Project Member of each project (README, "Rancher 2.12 and later"); or set rancher.inCluster=true to write from inside Rancher's local cluster as the chart's ServiceAccount` -}}
{{- end -}}
{{- if not (regexMatch `^https?://[^/]+(/[^?#]*)?/v3(/project/[^/?#]+)?/?$` $r.url) -}}
{{- fail (printf "rancher.url: %q is not Rancher's API URL; use https://<rancher>/v3 (or …/v3/project/<cluster id>:<project id>)" $r.url) -}}
{{- end -}}
{{- $create := printf "kubectl create namespace %[1]s; kubectl -n %[1]s create secret generic rancher-api-token --from-literal=%[2]s=<token-xxxxx:yyyy> (Rancher: Account & API Keys, Create API Key, Scope: No Scope; the namespace and the Secret before helm install: --create-namespace makes the namespace only after this check), then --set rancher.token.existingSecret=rancher-api-token" $ns $r.token.key -}}
{{- if not $r.token.existingSecret -}}
{{- fail (printf "rancher.token.existingSecret: name the Secret holding the Rancher API token (never the token itself in values): %s" $create) -}}
{{- end -}}
{{- if $cluster -}}
{{- $secret := lookup "v1" "Secret" $ns $r.token.existingSecret -}}
{{- if not $secret -}}
{{- fail (printf "rancher.token.existingSecret: no Secret %s in namespace %s. Create it first: %s" $r.token.existingSecret $ns $create) -}}
{{- end -}}
{{- if not (hasKey (default dict $secret.data) $r.token.key) -}}
{{- fail (printf "rancher.token.existingSecret: Secret %s/%s has no key %s (it has %s); add it, or name the key in rancher.token.key" $ns $r.token.existingSecret $r.token.key (keys (default dict $secret.data) | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $r.ca.configMap $r.ca.secret -}}
{{- fail "rancher.ca: set configMap or secret, not both" -}}
{{- end -}}
{{- if and $cluster (or $r.ca.configMap $r.ca.secret) -}}
{{- $kind := ternary "ConfigMap" "Secret" (not (empty $r.ca.configMap)) -}}
{{- $name := default $r.ca.secret $r.ca.configMap -}}
{{- $obj := lookup "v1" $kind $ns $name -}}
{{- if not $obj -}}
{{- fail (printf "rancher.ca: no %s %s in namespace %s. Create it first: kubectl -n %s create %s %s --from-file=%s=rancher-ca.pem (Rancher's CA: curl -fsS https://<rancher>/cacerts > rancher-ca.pem)" $kind $name $ns $ns (ternary "configmap" "secret generic" (eq $kind "ConfigMap")) $name $r.ca.key) -}}
{{- end -}}
{{- if not (hasKey (default dict $obj.data) $r.ca.key) -}}
{{- fail (printf "rancher.ca: %s %s/%s has no key %s (it has %s); add it, or name the key in rancher.ca.key" $kind $ns $name $r.ca.key (keys (default dict $obj.data) | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The container's variables in mode rancherProjectSecrets. */}}
{{- define "recc.rancherEnv" -}}
- name: RANCHER_PROJECTS
  value: {{ join "," .Values.rancher.projects | quote }}
{{- if include "recc.rancherProxy" . }}
- name: CATTLE_URL
  value: {{ .Values.rancher.url | quote }}
- name: CATTLE_SECRET_KEY_FILE
  value: {{ include "recc.rancherTokenDir" . }}/token
{{- end }}
{{- if or .Values.rancher.ca.configMap .Values.rancher.ca.secret }}
- name: RANCHER_CA_FILE
  value: {{ include "recc.rancherCADir" . }}/ca.crt
{{- end }}
{{- with .Values.rancher.secretApi }}
- name: RANCHER_SECRET_API
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The token and the CA, each mounted as one file. */}}
{{- define "recc.rancherVolumeMounts" -}}
{{- if eq .Values.mode "rancherProjectSecrets" -}}
{{- if include "recc.rancherProxy" . }}
- name: rancher-token
  mountPath: {{ include "recc.rancherTokenDir" . }}
  readOnly: true
{{- end }}
{{- if or .Values.rancher.ca.configMap .Values.rancher.ca.secret }}
- name: rancher-ca
  mountPath: {{ include "recc.rancherCADir" . }}
  readOnly: true
{{- end }}
{{- end -}}
{{- end -}}

{{- define "recc.rancherVolumes" -}}
{{- if eq .Values.mode "rancherProjectSecrets" -}}
{{- $ca := .Values.rancher.ca -}}
{{- if include "recc.rancherProxy" . }}
- name: rancher-token
  secret:
    secretName: {{ .Values.rancher.token.existingSecret }}
    items: [{key: {{ .Values.rancher.token.key | quote }}, path: token}]
{{- end }}
{{- if $ca.configMap }}
- name: rancher-ca
  configMap:
    name: {{ $ca.configMap }}
    items: [{key: {{ $ca.key | quote }}, path: ca.crt}]
{{- else if $ca.secret }}
- name: rancher-ca
  secret:
    secretName: {{ $ca.secret }}
    items: [{key: {{ $ca.key | quote }}, path: ca.crt}]
{{- end }}
{{- end -}}
{{- end -}}

{{- /* The backing namespaces of rancher.projects, as a JSON list, for the in-cluster mode's Roles:
rancher.backingNamespaces, else each project's status.backingNamespace (or its id when empty) looked up at
install and upgrade. helm template cannot look: there they must be in values. */ -}}
{{- define "recc.backingNamespaces" -}}
{{- $r := .Values.rancher -}}
{{- $cluster := lookup "v1" "Namespace" "" "kube-system" -}}
{{- $found := list -}}
{{- range $id := $r.projects -}}
{{- $parts := splitList ":" $id -}}
{{- if ne (len $parts) 2 -}}
{{- fail (printf "rancher.projects: %q is not a project id <cluster id>:<project id> (local:p-abcde), nor all" $id) -}}
{{- end -}}
{{- if $cluster -}}
{{- $p := lookup "management.cattle.io/v3" "Project" (index $parts 0) (index $parts 1) -}}
{{- if not $p -}}
{{- fail (printf "rancher.projects: no project %s in this cluster (projects.management.cattle.io %s in namespace %s): install rancher.inCluster=true into Rancher's local cluster, and check the id (Rancher shows it as <cluster id>:<project id>)" $id (index $parts 1) (index $parts 0)) -}}
{{- end -}}
{{- $found = append $found (default (index $parts 1) (dig "status" "backingNamespace" "" $p)) -}}
{{- end -}}
{{- end -}}
{{- if $r.backingNamespaces -}}
{{- range $found -}}
{{- if not (has . $r.backingNamespaces) -}}
{{- fail (printf "rancher.backingNamespaces: %s, a backing namespace of rancher.projects, is missing; add it, or leave the list empty to have helm install look them up" .) -}}
{{- end -}}
{{- end -}}
{{- $found = $r.backingNamespaces -}}
{{- else if not $cluster -}}
{{- fail "rancher.backingNamespaces: name the backing namespace of each of rancher.projects (helm template cannot look them up; helm install does): kubectl -n <cluster id> get projects.management.cattle.io <project id> -o jsonpath='{.status.backingNamespace}' (empty: the project id itself)" -}}
{{- end -}}
{{- toJson (uniq $found) -}}
{{- end -}}
