#!/usr/bin/env bash
# Footprint: build the binary as the Dockerfile does, start it against its
# built-in stand-ins (--demo), wait until it is ready (one full run written),
# let it idle, and read its memory from /proc. Fails when the stripped binary is
# more than 24 MiB, or the idle RSS (Rancher 1.x mode) is more than the budget
# (issue 22; BENCHMARKS.md, "Footprint").
set -euo pipefail
cd "$(dirname "$0")/.."

size_limit_kb=$((24 * 1024))
rss_limit_kb=$((${RSS_BUDGET_MB:-20} * 1000))
tmp=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

CGO_ENABLED=0 go build -trimpath -tags netgo -ldflags "-s -w -X main.version=footprint" -o "$tmp/rancher-ecr-credentials" .
size_kb=$(( $(stat -c %s "$tmp/rancher-ecr-credentials") / 1024 ))

port=$(( 20000 + RANDOM % 20000 ))
"$tmp/rancher-ecr-credentials" --demo --listen-port "$port" --log-level warn >"$tmp/out" 2>&1 &
pid=$!

ready=""
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || { echo "daemon never became ready"; cat "$tmp/out"; exit 1; }
sleep "${IDLE_SECONDS:-3}"

rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
echo "binary: ${size_kb} KB (stripped, static)"
echo "idle after a run: VmRSS ${rss_kb} KB, peak VmHWM ${hwm_kb} KB, ${threads} threads"
echo "(the process also holds the demo's in-memory ECR and Rancher stand-ins)"

fail=0
[ "$size_kb" -le "$size_limit_kb" ] || { echo "FAIL: binary ${size_kb} KB > ${size_limit_kb} KB"; fail=1; }
[ "$rss_kb" -le "$rss_limit_kb" ] || { echo "FAIL: idle RSS ${rss_kb} KB > ${rss_limit_kb} KB"; fail=1; }
exit $fail
