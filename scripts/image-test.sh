#!/usr/bin/env bash
# Checks the image scripts/image.sh built, as a user would run it: under runc, read-only root, as the
# image's own non-root user.
#
#   scripts/image.sh ci && scripts/image-test.sh rancher-ecr-credentials:ci
#
# - the manifest list holds linux/amd64 and linux/arm64; each entry has its architecture, user
#   65532:65532, the OCI labels, the HEALTHCHECK and entrypoint, at most 40 MiB, and nothing in its
#   file system but a static binary for that platform (Go's build info: CGO_ENABLED=0, -trimpath,
#   netgo, the built-in CA roots);
# - the entry for this machine runs (arm64 cannot run here: no emulation): --version prints the
#   stamped version and commit; --demo --once writes a cycle with no network; --demo as a daemon
#   answers /readyz, passes the healthcheck subcommand (podman exec, a second container on the host
#   network, and the image's HEALTHCHECK through podman healthcheck run), runs as uid 65532, stops
#   with exit 0 on SIGTERM, after which the healthcheck fails;
# - the README's push command puts both platforms in a registry (Debian's docker-registry on loopback),
#   and the arm64 image pulls back from it.
#
# Needs podman, runc, jq, curl, docker-registry and go (for `go version -m`). Ends with "N passed, M failed"; exits 1
# when anything failed or could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:-rancher-ecr-credentials:latest}
name=${image%:*}
size_limit=$((40 * 1024 * 1024))
want_platforms="linux/amd64 linux/arm64"

for tool in podman runc jq curl docker-registry go; do
	command -v "$tool" >/dev/null 2>&1 || { echo "image-test: $tool not found (apt-get install podman runc jq curl docker-registry)" >&2; exit 1; }
done

tmp=$(mktemp -d)
ctr=""
registry_pid=""
mounted=()
cleanup() {
	[ -z "$ctr" ] || podman rm -f "$ctr" >/dev/null 2>&1 || true
	[ -z "$registry_pid" ] || kill "$registry_pid" 2>/dev/null || true
	for id in "${mounted[@]}"; do podman image unmount "$id" >/dev/null 2>&1 || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
# As scripts/image.sh: runc, no RLIMIT_NOFILE default, and no systemd timer for the HEALTHCHECK
# (podman runs it on demand with `podman healthcheck run`).
printf '[containers]\ndefault_ulimits = []\n' >"$tmp/containers.conf"
export CONTAINERS_CONF="$tmp/containers.conf" DISABLE_HC_SYSTEMD=true
run() { podman --runtime runc run --rm --read-only "$@"; }

passed=0 failed=0
check() { # check DESCRIPTION COMMAND...: runs COMMAND, counts and prints the result
	local desc=$1
	shift
	if "$@" >"$tmp/check.out" 2>&1; then
		passed=$((passed + 1))
		echo "ok    $desc"
	else
		failed=$((failed + 1))
		echo "FAIL  $desc"
		sed 's/^/      /' "$tmp/check.out" | tail -20
	fi
}
equal() { [ "$1" = "$2" ] || { echo "got \"$1\", want \"$2\""; return 1; }; }
contains() { grep -qF -- "$2" <<<"$1" || { echo "\"$2\" not in:"; echo "$1"; return 1; }; }
failed_with() { cat "$@"; return 1; } # failed_with FILE...: a check that fails, showing why
free_port() { # a port nothing on loopback answers on
	local port
	port=$((20000 + RANDOM % 20000))
	while curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; do port=$((20000 + RANDOM % 20000)); done
	echo "$port"
}

if ! podman manifest inspect "$image" >"$tmp/list.json" 2>"$tmp/list.err"; then
	cat "$tmp/list.err"
	echo "image-test: $image is not a manifest list in podman's storage: build it with scripts/image.sh ${image##*:}"
	echo "image-test: 0 passed, 1 failed"
	exit 1
fi
platforms=$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | sort | join(" ")' "$tmp/list.json")
check "manifest list $image holds $want_platforms" equal "$platforms" "$want_platforms"

host_arch=$(go env GOARCH)
host_image="" arm64_image=""
labels="source version revision created licenses title description"
for platform in $want_platforms; do
	arch=${platform#*/}
	digest=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$tmp/list.json" | head -1)
	if ! podman image inspect "localhost/$name@$digest" >"$tmp/$arch.json" 2>&1; then
		check "$platform: image $digest in storage" failed_with "$tmp/$arch.json"
		continue
	fi
	cfg() { jq -r ".[0].$1" "$tmp/$arch.json"; }
	id=$(cfg Id)
	[ "$arch" != arm64 ] || arm64_image=$id
	if [ "$arch" = "$host_arch" ]; then
		host_image=$id
		host_version=$(cfg 'Labels["org.opencontainers.image.version"]')
		host_revision=$(cfg 'Labels["org.opencontainers.image.revision"]')
	fi
	check "$platform: architecture" equal "$(cfg Os)/$(cfg Architecture)" "$platform"
	check "$platform: user 65532:65532 (numeric, non-root)" equal "$(cfg Config.User)" "65532:65532"
	check "$platform: entrypoint" equal "$(jq -c '.[0].Config.Entrypoint' "$tmp/$arch.json")" '["/rancher-ecr-credentials"]'
	check "$platform: HEALTHCHECK runs the healthcheck subcommand" \
		equal "$(jq -c '.[0].Healthcheck.Test' "$tmp/$arch.json")" '["CMD","/rancher-ecr-credentials","healthcheck"]'
	missing=""
	for l in $labels; do
		[ -n "$(cfg "Labels[\"org.opencontainers.image.$l\"] // empty")" ] || missing="$missing $l"
	done
	check "$platform: OCI labels ($labels)" equal "missing:${missing:- none}" "missing: none"
	size=$(cfg Size)
	echo "      $platform: $size bytes ($((size / 1024)) KiB), limit $size_limit"
	check "$platform: at most 40 MiB" test "$size" -le "$size_limit"

	# The file system: the binary and nothing else.
	root=$(podman image mount "$id")
	mounted+=("$id")
	check "$platform: the file system holds only /rancher-ecr-credentials" \
		equal "$(cd "$root" && find . -mindepth 1 | sort | tr '\n' ' ')" "./rancher-ecr-credentials "
	go version -m "$root/rancher-ecr-credentials" >"$tmp/$arch.buildinfo" 2>&1 || true
	bi=$(cat "$tmp/$arch.buildinfo")
	for want in "GOARCH=$arch" "GOOS=linux" "CGO_ENABLED=0" "-trimpath=true" "-tags=netgo" "golang.org/x/crypto/x509roots/fallback"; do
		check "$platform: binary build info has $want" contains "$bi" "$want"
	done
	podman image unmount "$id" >/dev/null
	mounted=()
done

if [ -z "$host_image" ]; then
	check "an entry for this machine's architecture ($host_arch) to run" false
else
	out=$(run --network none "$host_image" --version 2>&1) || true
	check "--version prints the stamped version" contains "$out" "rancher-ecr-credentials $host_version"
	check "--version prints the stamped commit" contains "$out" "commit:  $host_revision"
	check "--version says linux/$host_arch, a release build" bash -c '! grep -q "not a release build" <<<"$1" && grep -q "linux/$2" <<<"$1"' _ "$out" "$host_arch"

	check "--demo --once: a full cycle, exit 0, no network, read-only root" \
		bash -c 'out=$(podman --runtime runc run --rm --read-only --network none "$1" --demo --once 2>&1) &&
			grep -q "msg=\"run finished\".* failed=0" <<<"$out" || { echo "$out"; exit 1; }' _ "$host_image"

	# The daemon on the host network, on a free port, so the host and a second container reach it.
	port=$(free_port)
	ctr=$(podman --runtime runc run -d --read-only --network host -e LISTEN_PORT="$port" \
		"$host_image" --demo --log-level warn)
	ready=""
	for _ in $(seq 1 100); do
		if curl -fsS "http://127.0.0.1:$port/readyz" >"$tmp/readyz" 2>/dev/null; then ready=1; break; fi
		sleep 0.1
	done
	check "--demo: /readyz answers 200 within 10 s" test -n "$ready"
	pid=$(podman inspect --format '{{.State.Pid}}' "$ctr")
	check "--demo: runs as uid/gid 65532" equal "$(awk '/^(Uid|Gid):/ {print $2}' "/proc/$pid/status" | tr '\n' ' ')" "65532 65532 "
	check "--demo: read-only root file system" equal "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$ctr")" "true"
	check "healthcheck subcommand in the container (podman exec): exit 0" podman exec "$ctr" /rancher-ecr-credentials healthcheck
	check "healthcheck subcommand from a second container on the host network: exit 0" \
		run --network host -e LISTEN_PORT="$port" "$host_image" healthcheck
	check "the image's HEALTHCHECK (podman healthcheck run): healthy" podman healthcheck run "$ctr"
	podman stop -t 15 "$ctr" >/dev/null
	check "SIGTERM: the daemon stops with exit 0" equal "$(podman inspect --format '{{.State.ExitCode}}' "$ctr")" "0"
	check "healthcheck subcommand with the daemon stopped: exit 1" \
		bash -c '! podman --runtime runc run --rm --read-only --network host -e LISTEN_PORT="$2" "$1" healthcheck' _ "$host_image" "$port"
	podman rm "$ctr" >/dev/null
	ctr=""
fi

# The push command the README, the chart and the script print, into a real registry (plain HTTP on
# loopback, hence --tls-verify=false), and the arm64 entry pulled back by platform.
reg_port=$(free_port)
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
	"$tmp/registry" "$reg_port" >"$tmp/registry.yml"
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do
	curl -fs -o /dev/null "http://127.0.0.1:$reg_port/v2/" && break
	sleep 0.1
done
remote="127.0.0.1:$reg_port/$name:${image##*:}"
if podman manifest push --all --tls-verify=false "$image" "docker://$remote" >"$tmp/push.log" 2>&1; then
	pushed=$(curl -fs -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json' \
		"http://127.0.0.1:$reg_port/v2/$name/manifests/${image##*:}" |
		jq -r '[.manifests[].platform | .os + "/" + .architecture] | sort | join(" ")')
	check "podman manifest push --all to a registry: the index lists $want_platforms" equal "$pushed" "$want_platforms"
	# Into a storage of its own: pulled into the one holding the list, the same image would be stored
	# again under the registry's digest, which podman 4.3 then confuses with the list's entry.
	pull() { podman --root "$tmp/pull-storage" --runroot "$tmp/pull-run" --storage-driver vfs "$@"; }
	if pull pull -q --tls-verify=false --platform linux/arm64 "$remote" >"$tmp/pull.log" 2>&1; then
		check "pull --platform linux/arm64 from the registry: the arm64 image built" \
			equal "$(pull image inspect --format '{{.Id}}' "$remote")" "$arm64_image"
	else
		check "pull --platform linux/arm64 from the registry" failed_with "$tmp/pull.log" "$tmp/registry.log"
	fi
else
	check "podman manifest push --all to a registry" failed_with "$tmp/push.log" "$tmp/registry.log"
fi

echo "image-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
