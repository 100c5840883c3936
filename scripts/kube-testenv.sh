#!/usr/bin/env bash
# Prepares the binaries the Kubernetes tests and the Helm chart test run: etcd, kube-apiserver and helm,
# in a cache folder outside the clone. Idempotent: what is already built (per version) is kept.
#
#   KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test -race ./targets/namespaces/...
#
# Progress goes to stderr; the last line on stdout is the folder holding kube-apiserver, etcd and helm.
#
# etcd:           Debian's etcd-server package (apt-get), linked into the folder.
# kube-apiserver: built from the Go module proxy: a throw-away module requires k8s.io/kubernetes and
#                 points each of its staging modules (the replace block of
#                 https://github.com/kubernetes/kubernetes/blob/v1.34.2/go.mod) at the published
#                 k8s.io/<name> v0.x module. Minutes the first time (37 on 2 busy cores).
# helm:           go install helm.sh/helm/v3/cmd/helm.
#
# RECC_CACHE_DIR overrides the cache root (default ~/.cache/rancher-ecr-credentials).
set -euo pipefail

KUBE_VERSION=v1.34.2
HELM_VERSION=v3.22.0

cache="${RECC_CACHE_DIR:-$HOME/.cache/rancher-ecr-credentials}/kube"
bin="$cache/bin"
mkdir -p "$bin" "$cache/versions"

log() { echo "kube-testenv: $*" >&2; }

# One builder at a time: other worktrees may run this script concurrently.
exec 9>"$cache/.lock"
if ! flock -n 9; then
	log "another kube-testenv.sh is building in $cache; waiting for it"
	flock 9
fi

# etcd ----------------------------------------------------------------------------------------------
if ! command -v etcd >/dev/null 2>&1; then
	log "etcd missing: installing Debian's etcd-server"
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >&2
fi
ln -sfn "$(command -v etcd)" "$bin/etcd"

# cached NAME VERSION BUILD: unless versions/NAME-VERSION exists, runs "BUILD <output file>" and moves
# the result there; then links it into bin/NAME.
cached() {
	local name=$1 version=$2 build=$3
	local out="$cache/versions/$name-$version" start
	if [ ! -x "$out" ]; then
		log "building $name $version (minutes: the first build of kube-apiserver took 37 on 2 busy cores)"
		start=$(date +%s)
		"$build" "$out.tmp"
		mv "$out.tmp" "$out"
		log "$name $version built in $(($(date +%s) - start)) s"
	fi
	ln -sfn "$out" "$bin/$name"
}

build_apiserver() {
	# The work folder is in the cache: a failed build leaves it for inspection, the next build removes it.
	local out=$1 work="$cache/work-apiserver"
	rm -rf "$work" && mkdir -p "$work"
	(
		cd "$work"
		go mod init kube-testenv/apiserver >&2 2>&1
		go mod edit -go=1.26 -godebug=default=go1.24
		# Every "k8s.io/<name> => ./staging/src/k8s.io/<name>" of k8s.io/kubernetes' go.mod becomes
		# "k8s.io/<name> => k8s.io/<name> v0.<minor>.<patch>".
		local staging_version="v0.${KUBE_VERSION#v1.}" modfile pkg=k8s.io/component-base/version
		modfile=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
		[ -n "$modfile" ] || { log "could not download k8s.io/kubernetes@$KUBE_VERSION's go.mod"; exit 1; }
		sed -n 's#^\t\(k8s\.io/[a-z0-9-]*\) => \./staging/src/k8s\.io/[a-z0-9-]*$#\1#p' "$modfile" |
			while read -r mod; do go mod edit -replace="$mod=$mod@$staging_version"; done
		go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >&2
		CGO_ENABLED=0 go build -trimpath -o "$out" \
			-ldflags "-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)" \
			k8s.io/kubernetes/cmd/kube-apiserver >&2
	)
	rm -rf "$work"
}

build_helm() {
	local out=$1 gobin="$cache/work-helm"
	rm -rf "$gobin" && mkdir -p "$gobin"
	CGO_ENABLED=0 GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
	mv "$gobin/helm" "$out"
	rm -rf "$gobin"
}

cached kube-apiserver "$KUBE_VERSION" build_apiserver
cached helm "$HELM_VERSION" build_helm

echo "$bin"
