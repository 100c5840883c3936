#!/usr/bin/env bash
# Builds the image rancher-ecr-credentials:<TAG> (default: latest) for linux/amd64 and linux/arm64 as
# one multi-arch manifest list in podman's local storage, offline: no registry is contacted.
#
#   scripts/image.sh v1.2.3
#   podman manifest push --all rancher-ecr-credentials:v1.2.3 docker://<registry>/rancher-ecr-credentials:v1.2.3
#
# How: the Dockerfile is the one definition of the image. This script compiles the static binaries on
# this machine with the Dockerfile's own go build command (TestImageScript_BuildCommand keeps the two
# alike) and gives them to podman as the build context "binaries", which replaces the Dockerfile's
# build stages; what podman builds is the final FROM scratch stage. See the Dockerfile's header.
#
# Stamped into the binary (--version) and the OCI labels:
#   VERSION   default: TAG when one is given, else `git describe --tags --always --dirty`
#   REVISION  default: `git rev-parse HEAD`
#   CREATED   default: now, or SOURCE_DATE_EPOCH when set (RFC 3339, UTC)
#
# Needs go and podman (Debian: apt-get install podman runc). podman runs with a containers.conf of its
# own (default_ulimits = [], which runc needs on hosts that forbid raising RLIMIT_NOFILE), written in a
# temporary folder and named by CONTAINERS_CONF: nothing under /etc is changed.
# scripts/image-test.sh runs the result under runc.
set -euo pipefail
cd "$(dirname "$0")/.."

name=rancher-ecr-credentials
tag=${1:-latest}
platforms=(linux/amd64 linux/arm64)

# https://github.com/distribution/reference/blob/main/reference.go (tag)
if ! [[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
	echo "image.sh: TAG \"$tag\" is not a valid image tag (letters, digits, _ . -, at most 128, not starting with . or -)" >&2
	exit 2
fi
for tool in go podman; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "image.sh: $tool not found; install it (Debian: apt-get install podman runc; Go 1.26 from go.dev)" >&2
		exit 2
	fi
done

git_or() { git "${@:2}" 2>/dev/null || echo "$1"; }
if [ -z "${VERSION:-}" ]; then
	if [ $# -gt 0 ]; then VERSION=$tag; else VERSION=$(git_or "$tag" describe --tags --always --dirty); fi
fi
REVISION=${REVISION:-$(git_or unknown rev-parse HEAD)}
CREATED=${CREATED:-$(date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} +%Y-%m-%dT%H:%M:%SZ)}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '[containers]\ndefault_ulimits = []\n' >"$tmp/containers.conf"
export CONTAINERS_CONF="$tmp/containers.conf"

start=$(date +%s)
for platform in "${platforms[@]}"; do
	TARGETOS=${platform%/*} TARGETARCH=${platform#*/}
	echo "image.sh: go build $TARGETOS/$TARGETARCH (version $VERSION)" >&2
	# The Dockerfile's build command, with its -o in the binaries context's layout.
	CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -tags netgo \
		-ldflags "-s -w -X main.version=${VERSION} -X main.commit=${REVISION} -X main.date=${CREATED}" \
		-o "$tmp/binaries/$TARGETOS-$TARGETARCH/rancher-ecr-credentials" .
done
built=$(date +%s)

# instances NAME:TAG: the image ids of a manifest list's entries.
instances() {
	podman manifest inspect "$1" |
		sed -n 's/^ *"digest": "\(sha256:[0-9a-f]*\)",*$/\1/p' |
		while read -r digest; do podman image inspect --format '{{.Id}}' "localhost/$name@$digest"; done
}

# A rebuild replaces the tag: --manifest would otherwise add to the list already there. The old
# entries are removed too (podman manifest rm leaves them behind, untagged).
if podman manifest exists "$name:$tag" 2>/dev/null; then
	old=$(instances "$name:$tag" 2>/dev/null || true)
	podman manifest rm "$name:$tag" >/dev/null
	# shellcheck disable=SC2086 # one id per word
	[ -z "$old" ] || podman rmi $old >/dev/null 2>&1 || true
elif podman image exists "$name:$tag" 2>/dev/null; then
	podman rmi "$name:$tag" >/dev/null
fi

# --format docker keeps the HEALTHCHECK (the OCI image format has no field for it); --layers=false
# leaves no intermediate images behind.
platform_list=$(IFS=,; echo "${platforms[*]}")
podman --runtime runc build --format docker --layers=false \
	--platform "$platform_list" --manifest "$name:$tag" \
	--build-context "binaries=$tmp/binaries" \
	--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "CREATED=$CREATED" \
	-f Dockerfile . >&2

echo "image.sh: built $name:$tag ($platform_list) in $(($(date +%s) - start)) s (go build $((built - start)) s)" >&2
for id in $(instances "$name:$tag"); do
	podman image inspect --format "image.sh:   {{.Os}}/{{.Architecture}} {{.Digest}} {{.Size}} bytes" "$id" >&2
done
cat >&2 <<EOF
image.sh: push it to a registry your hosts can pull from (not only the ECR registry it refreshes):
  podman manifest push --all $name:$tag docker://<registry>/$name:$tag
EOF
echo "$name:$tag"
