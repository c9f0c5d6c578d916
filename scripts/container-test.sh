#!/usr/bin/env bash
# Builds the container image from ./Dockerfile, runs it the way a user would, and has the real
# Prometheus scrape it with the project's own config, alert rules and dashboard queries.
#
#   scripts/container-test.sh          (part `container` of scripts/test.sh)
#
# On a fresh Debian 12 machine, with no container registry reachable:
#   1. tools: podman, runc, debootstrap, python3-yaml with apt-get (sudo when not root), and
#      the prometheus server binary out of Debian's `prometheus` package (apt-get download +
#      dpkg-deb -x into .cache/container/: installing the package would start its service).
#   2. base image localhost/debian-base:12: `debootstrap --variant=minbase bookworm`, trimmed
#      (apt lists and caches, docs, man pages, locales) and given distroless' `nonroot` user
#      (65532); the tarball is cached in .cache/container/ (ignored), `podman import`ed when
#      the image is missing. It stands in for gcr.io/distroless/cc-debian12 (same Debian
#      release, glibc and libstdc++), which cannot be pulled here.
#   3. the release binary, built on this machine (`cargo build --release --locked --bin
#      colorizer`; set CARGO_BUILD_JOBS to limit it), stripped like the Dockerfile does, and
#      libonnxruntime from scripts/fetch-ort.sh, as the build context of the Dockerfile's
#      `artifacts-prebuilt` stage: `podman build --build-arg ARTIFACTS=artifacts-prebuilt`
#      with the runtime stage's FROM image replaced by the local base (--build-context), so
#      the Dockerfile's runtime stage is what gets built: localhost/colorizer:test (kept).
#   4. runs it: `podman --runtime runc run --read-only --network host` as the image's own user
#      (crun fails on this kind of machine; CONTAINERS_CONF points at a containers.conf with
#      `default_ulimits = []`), configured by environment (COLORIZER_PORT, COLORIZER_POOL_SIZE,
#      COLORIZER_THREADS, COLORIZER_QUEUE, COLORIZER_DRAIN_TIMEOUT_S), and checks: it runs as
#      uid 65532 with a read-only root, /readyz, the settings in /info, a real colorization of
#      web/samples/landscape.png (200, PNG of the same size, with colour), the image's
#      HEALTHCHECK (`podman healthcheck run`, and the same command failing on a dead port).
#   5. Prometheus (real server) with a config derived from deploy/prometheus/prometheus.yml
#      (target: the container; 1 s scrape and rule evaluation) and deploy/prometheus/alerts.yml,
#      while traffic runs: samples (200), a non-image (400) and overload (503, pool 1 and
#      queue 0 with a big photo in flight). Then every PromQL expression of
#      deploy/grafana/dashboards/colorizer.json and every alert rule is queried through
#      /api/v1/query (scripts/container_check.py promql explains how alert conditions, empty
#      when healthy, are checked); any error or empty answer fails the test and is listed.
#   6. SIGTERM during an in-flight request (a 12-megapixel photo): the request completes with
#      200 and the container exits 0.
# Prints the image size and the time to ready. Containers and Prometheus are removed on exit,
# whatever happens; the image localhost/colorizer:test stays. Rerunnable.
#
# Environment: CONTAINER_TEST_PORT (18180), CONTAINER_TEST_PROM_PORT (19090),
# DEBIAN_MIRROR (http://deb.debian.org/debian), CONTAINER_CACHE (.cache/container),
# CARGO_BUILD_JOBS (cargo's own), CONTAINER_TEST_KEEP_TMP=1 (keep logs and answers),
# CONTAINER_TEST_BINARY (a colorizer binary to use instead of building target/release/colorizer).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CACHE=${CONTAINER_CACHE:-$ROOT/.cache/container}
IMAGE=localhost/colorizer:test
BASE_IMAGE=localhost/debian-base:12
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NAME=colorizer-container-test
PORT=${CONTAINER_TEST_PORT:-18180}
PROM_PORT=${CONTAINER_TEST_PROM_PORT:-19090}
ORT_VERSION=$(sed -n 's/^ORT_VERSION=\([0-9.]*\)$/\1/p' scripts/fetch-ort.sh)
# Bump when the base recipe below changes: the cached tarball is rebuilt.
BASE_RECIPE=2
URL=http://127.0.0.1:$PORT
PROM_URL=http://127.0.0.1:$PROM_PORT

T_START=$SECONDS
log() { printf '\n--- %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo --preserve-env=CONTAINERS_CONF)

TMP=$(mktemp -d /tmp/container-test.XXXXXX)
PROM_PID=""
BG_PIDS=()
cleanup() {
  local rc=$?
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$PROM_PID" ]; then
    kill "$PROM_PID" 2>/dev/null || true
    wait "$PROM_PID" 2>/dev/null || true
  fi
  if command -v podman >/dev/null 2>&1; then
    if [ "$rc" -ne 0 ] && "${SUDO[@]}" podman container exists "$NAME" 2>/dev/null; then
      echo "--- last container log lines:"
      "${SUDO[@]}" podman logs --tail 30 "$NAME" 2>&1 || true
    fi
    "${SUDO[@]}" podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  fi
  if [ "${CONTAINER_TEST_KEEP_TMP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "logs and answers kept in $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools -----------------------------------------------------------------------------
log "tools"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
"$PY" -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
if [ ${#need[@]} -gt 0 ]; then
  echo "apt-get install ${need[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >"$TMP/apt.log" 2>&1 ||
    { cat "$TMP/apt.log"; fail "apt-get install ${need[*]}"; }
  [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
fi
PROMETHEUS=$(command -v prometheus || true)
if [ -z "$PROMETHEUS" ]; then
  PROMETHEUS=$CACHE/prometheus/usr/bin/prometheus
  if [ ! -x "$PROMETHEUS" ]; then
    echo "fetching the prometheus binary (Debian package prometheus, extracted, not installed)"
    mkdir -p "$CACHE" "$TMP/deb"
    (cd "$TMP/deb" && apt-get download prometheus >/dev/null 2>&1) ||
      { "${SUDO[@]}" apt-get update -qq && (cd "$TMP/deb" && apt-get download prometheus >/dev/null); } ||
      fail "apt-get download prometheus"
    rm -rf "$CACHE/prometheus"
    dpkg-deb -x "$TMP"/deb/prometheus_*.deb "$CACHE/prometheus"
  fi
fi
# crun (podman's default) fails on setrlimit here; runc needs the default ulimits dropped.
printf '[containers]\ndefault_ulimits = []\n' >"$TMP/containers.conf"
export CONTAINERS_CONF=$TMP/containers.conf
PODMAN=("${SUDO[@]}" podman --runtime runc)
echo "$(podman --version), runc $(runc --version | sed -n 's/^runc version //p'), $("$PROMETHEUS" --version 2>&1 | sed -n 1p)"

# --- 2. base image ------------------------------------------------------------------------
log "base image $BASE_IMAGE"
BASE_TAR=$CACHE/debian-$SUITE-minbase.tar
BASE_STAMP=$CACHE/debian-$SUITE-minbase.recipe
t0=$(now)
if [ ! -f "$BASE_TAR" ] || [ "$(cat "$BASE_STAMP" 2>/dev/null)" != "$BASE_RECIPE" ]; then
  rootfs=$CACHE/rootfs.tmp
  mkdir -p "$CACHE"
  "${SUDO[@]}" rm -rf "$rootfs"
  echo "debootstrap --variant=minbase $SUITE ($MIRROR)"
  "${SUDO[@]}" debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$TMP/debootstrap.log" 2>&1 ||
    { tail -20 "$TMP/debootstrap.log"; fail "debootstrap"; }
  # Trim what a container never needs (as Debian's own images do), and add distroless'
  # nonroot user so that uid 65532 has a name and a home, as in the real base.
  # shellcheck disable=SC2016 # $1 is expanded by that sh
  "${SUDO[@]}" sh -euc '
    cd "$1"
    rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* \
      usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/* var/log/* \
      var/cache/debconf/*-old
    grep -q "^nonroot:" etc/passwd || echo "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" >>etc/passwd
    grep -q "^nonroot:" etc/group || echo "nonroot:x:65532:" >>etc/group
    mkdir -p home/nonroot && chown 65532:65532 home/nonroot && chmod 700 home/nonroot
  ' sh "$rootfs"
  "${SUDO[@]}" tar --numeric-owner -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' \
    --exclude='./sys/*' -cf "$BASE_TAR.tmp" .
  "${SUDO[@]}" chown "$(id -u):$(id -g)" "$BASE_TAR.tmp"
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  echo "$BASE_RECIPE" >"$BASE_STAMP"
  "${SUDO[@]}" rm -rf "$rootfs"
  rm -f "$CACHE/debian-$SUITE-minbase.imported"
fi
# Import when the image is missing or is not the one made from this tarball.
base_id=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
if [ -z "$base_id" ] || [ "$base_id" != "$(cat "$CACHE/debian-$SUITE-minbase.imported" 2>/dev/null)" ]; then
  "${PODMAN[@]}" import --quiet --message "debootstrap --variant=minbase $SUITE (scripts/container-test.sh)" \
    "$BASE_TAR" "$BASE_IMAGE" >/dev/null
  "${PODMAN[@]}" image inspect --format '{{.Id}}' "$BASE_IMAGE" >"$CACHE/debian-$SUITE-minbase.imported"
  # A base imported by an earlier recipe: removed unless an image still uses it.
  [ -z "$base_id" ] || "${PODMAN[@]}" rmi "$base_id" >/dev/null 2>&1 || true
fi
BASE_SIZE=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE_IMAGE")
echo "$BASE_IMAGE: $((BASE_SIZE / 1000000)) MB ($(elapsed "$t0") s)"

# --- 3. release binary and image ----------------------------------------------------------
log "release binary"
t0=$(now)
scripts/fetch-ort.sh >/dev/null
BIN=${CONTAINER_TEST_BINARY:-}
if [ -z "$BIN" ]; then
  scripts/build-deps.sh
  cargo build --release --locked --bin colorizer
  BIN=target/release/colorizer
fi
HOST_GLIBC=$(ldd --version 2>&1 | sed -n '1s/.* \([0-9][0-9]*\.[0-9][0-9]*\)$/\1/p')
if [ "$(printf '%s\n2.36\n' "$HOST_GLIBC" | sort -V | tail -1)" != 2.36 ]; then
  echo "WARNING: host glibc $HOST_GLIBC is newer than Debian 12's 2.36: the binary may not start in the image"
fi
CTX=$CACHE/context
mkdir -p "$CTX"
# As the Dockerfile's build stage: debug info stripped, symbols kept.
if command -v strip >/dev/null; then
  strip --strip-debug -o "$CTX/colorizer.tmp" "$BIN"
else
  cp "$BIN" "$CTX/colorizer.tmp"
fi
mv "$CTX/colorizer.tmp" "$CTX/colorizer"
cp ".ort/libonnxruntime.so.$ORT_VERSION" "$CTX/libonnxruntime.so"
echo "binary $(($(stat -c %s "$CTX/colorizer") / 1000000)) MB, libonnxruntime $ORT_VERSION" \
  "$(($(stat -c %s "$CTX/libonnxruntime.so") / 1000000)) MB ($(elapsed "$t0") s)"

log "image $IMAGE"
t0=$(now)
RUNTIME_FROM=$(awk 'toupper($1) == "FROM" && toupper($3) == "AS" && $4 == "runtime" { print $2 }' Dockerfile)
[ -n "$RUNTIME_FROM" ] || fail "Dockerfile has no 'FROM IMAGE AS runtime' stage"
images_now() { "${PODMAN[@]}" images -a -q --no-trunc | sed 's/^sha256://' | sort -u; }
images_now >"$TMP/images.before"
# --format docker keeps HEALTHCHECK (the OCI image format has no field for it). --layers
# stays on: podman 4.3 with --layers=false and --build-context fails after tagging.
"${PODMAN[@]}" build --pull=never --format docker -f Dockerfile --target runtime \
  --build-arg ARTIFACTS=artifacts-prebuilt \
  --build-context "$RUNTIME_FROM=container-image://$BASE_IMAGE" \
  -t "$IMAGE" "$CTX" >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log"; fail "podman build"; }
# Images that earlier runs built (a previous colorizer:test, intermediate stages) and the
# current image no longer uses are removed; `podman rmi` refuses the ones still in use.
BUILT=$CACHE/built-images
images_now | comm -13 "$TMP/images.before" - >>"$BUILT"
new_id=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE")
for _ in 1 2; do
  sort -u "$BUILT" | while read -r id; do
    if [ "$id" != "$new_id" ]; then
      "${PODMAN[@]}" rmi "$id" >/dev/null 2>&1 || true
    fi
    if "${PODMAN[@]}" image exists "$id"; then echo "$id"; fi
  done >"$BUILT.tmp"
  mv "$BUILT.tmp" "$BUILT"
done
IMAGE_SIZE=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
echo "$IMAGE built from the Dockerfile's runtime stage on $BASE_IMAGE (for $RUNTIME_FROM)" \
  "($(elapsed "$t0") s)"
echo "image size $((IMAGE_SIZE / 1000000)) MB = base $((BASE_SIZE / 1000000)) MB +" \
  "colorizer layers $(((IMAGE_SIZE - BASE_SIZE) / 1000000)) MB"
hc=$("${PODMAN[@]}" image inspect --format '{{json .HealthCheck}}' "$IMAGE")
echo "HEALTHCHECK $hc, USER $("${PODMAN[@]}" image inspect --format '{{.User}}' "$IMAGE")"
case $hc in *colorizer*healthcheck*) ;; *) fail "the image has no HEALTHCHECK running colorizer healthcheck" ;; esac

# --- 4. run it ----------------------------------------------------------------------------
log "run (read-only, network host, port $PORT, pool 1 x 2 threads, queue 0)"
"${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
if curl -s -o /dev/null "$URL/healthz"; then
  fail "something already answers on port $PORT (set CONTAINER_TEST_PORT)"
fi
t0=$(now)
# The health check is run by hand below: podman's periodic timer needs systemd (without it
# podman logs "unable to get systemd connection" errors, which are dropped here).
"${PODMAN[@]}" run -d --name "$NAME" --read-only --network host --health-interval disable \
  -e COLORIZER_PORT="$PORT" -e COLORIZER_POOL_SIZE=1 -e COLORIZER_THREADS=2 \
  -e COLORIZER_QUEUE=0 -e COLORIZER_DRAIN_TIMEOUT_S=20 "$IMAGE" >/dev/null 2>"$TMP/run.err" ||
  { cat "$TMP/run.err"; fail "podman run"; }
grep -v 'unable to get systemd connection' "$TMP/run.err" >&2 || true
ready=""
for _ in $(seq 1 1200); do
  if curl -sf -o /dev/null "$URL/readyz"; then
    ready=$(elapsed "$t0")
    break
  fi
  [ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$NAME")" = true ] ||
    fail "the container stopped before it was ready"
  sleep 0.05
done
[ -n "$ready" ] || fail "/readyz did not answer 200 within 60 s"
TIME_TO_READY=$ready
SERVICE_STARTUP=$(curl -sf "$URL/info" | "$PY" -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["startup_s"])')
echo "ready: podman run to /readyz 200 in $TIME_TO_READY s (the service's own start to ready: $SERVICE_STARTUP s)"

pid=$("${PODMAN[@]}" inspect --format '{{.State.Pid}}' "$NAME")
uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
gids=$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
echo "process uid $uids, gid $gids"
if [ "$uids" != "65532 65532 65532 65532" ] || [ "$gids" != "65532 65532 65532 65532" ]; then
  fail "the service does not run as the image's user 65532:65532"
fi
[ "$("${PODMAN[@]}" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$NAME")" = true ] ||
  fail "root filesystem not read-only"

echo "settings from the environment:"
"$PY" scripts/container_check.py check-info "$URL/info" pool_size=1 threads=2 queue=0 drain_timeout_s=20 ||
  fail "/info does not show the settings given by environment"

code=$(curl -s -o "$TMP/landscape.png" -w '%{http_code} %{content_type}' -H 'Content-Type: image/png' \
  --data-binary @web/samples/landscape.png "$URL/colorize?format=png")
echo "POST /colorize web/samples/landscape.png: $code"
[ "${code%% *}" = 200 ] || fail "/colorize answered $code"
"$PY" scripts/container_check.py check-png "$TMP/landscape.png" --width 384 --height 256 --min-colour 0.05 ||
  fail "the colorized sample is not a colour PNG of the input's size"

echo "HEALTHCHECK (podman healthcheck run, as the image's user, port from COLORIZER_PORT):"
"${PODMAN[@]}" healthcheck run "$NAME" || fail "podman healthcheck run: unhealthy"
if "${PODMAN[@]}" exec "$NAME" /usr/local/bin/colorizer healthcheck --url http://127.0.0.1:9/healthz 2>/dev/null; then
  fail "colorizer healthcheck passed against a dead port"
fi
echo "healthy; and the same command fails against a dead port"

# --- 5. Prometheus --------------------------------------------------------------------------
log "Prometheus $PROM_URL scraping $URL with deploy/prometheus/{prometheus,alerts}.yml"
t0=$(now)
"$PY" scripts/container_check.py prom-config deploy/prometheus/prometheus.yml "$TMP/prometheus.yml" \
  "127.0.0.1:$PORT" 1s --self-target "127.0.0.1:$PROM_PORT"
"$PROMETHEUS" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!
prom_query() { curl -sf --get --data-urlencode "query=$1" "$PROM_URL/api/v1/query"; }
up=""
for _ in $(seq 1 300); do
  kill -0 "$PROM_PID" 2>/dev/null || { cat "$TMP/prometheus.log"; fail "prometheus exited"; }
  if prom_query 'up{job="colorizer"} == 1' 2>/dev/null | grep '"value"' >/dev/null; then
    up=1
    break
  fi
  sleep 0.2
done
[ -n "$up" ] || { cat "$TMP/prometheus.log"; fail "Prometheus did not scrape the container"; }
echo "target up after $(elapsed "$t0") s"

"$PY" scripts/container_check.py make-png "$TMP/big.png" 4000 3000
post() { # post FILE QUERY -> status code
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: image/png' --data-binary "@$1" "$URL/colorize?$2"
}
in_flight() { # requests being served, the /metrics request itself included
  local n
  n=$(curl -sf "$URL/metrics" | awk '$1 == "colorizer_in_flight_requests" { print int($2) }') || true
  echo "${n:-0}"
}
# Overload: with a pool of 1 and no queue, requests that arrive while the big photo is being
# colorized are refused with 503 (colorizer_rejected_total{reason="overloaded"}).
overload() {
  local code_file=$TMP/overload.code
  post "$TMP/big.png" format=jpeg >"$code_file" &
  local p=$!
  BG_PIDS+=("$p")
  for _ in $(seq 1 200); do
    [ "$(in_flight)" -ge 2 ] && break
    sleep 0.02
  done
  local shed=0 c
  for _ in 1 2 3; do
    c=$(post web/samples/street.png "")
    [ "$c" = 503 ] && shed=$((shed + 1))
  done
  wait "$p"
  echo "  overload: big photo $(cat "$code_file"), 3 requests during it: $shed answered 503"
  [ "$(cat "$code_file")" = 200 ] && [ "$shed" -ge 1 ]
}
traffic() {
  local codes="" s
  for s in web/samples/*.png; do codes+="$(post "$s" "") "; done
  codes+="$(post web/samples/portrait.png format=webp) "
  codes+="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: image/png' --data-binary 'not an image' "$URL/colorize")"
  echo "  samples and a non-image: $codes"
  [ "$codes" = "200 200 200 200 200 400" ]
}
t0=$(now)
for round in 1 2 3; do
  traffic || fail "unexpected answers in traffic round $round"
  overload || fail "overload round $round did not give 200 + 503"
  sleep 1.5
done
# A few more scrapes and rule evaluations after the last requests.
sleep 3
echo "traffic sent in $(elapsed "$t0") s"

log "every dashboard and alert expression through $PROM_URL/api/v1/query"
# The dashboard's datasource declares a 15 s scrape interval, for which Grafana's
# $__rate_interval is at least 1m; all the traffic above lies within that window.
"$PY" scripts/container_check.py promql "$PROM_URL" --dashboard deploy/grafana/dashboards/colorizer.json \
  --rules deploy/prometheus/alerts.yml --rate-interval 1m || fail "expressions without data (listed above)"
kill "$PROM_PID" 2>/dev/null || true
wait "$PROM_PID" 2>/dev/null || true
PROM_PID=""

# --- 6. SIGTERM while a request is in flight ------------------------------------------------
log "SIGTERM during a request"
curl -s -o "$TMP/big-out.png" -w '%{http_code}' -H 'Content-Type: image/png' --data-binary "@$TMP/big.png" \
  "$URL/colorize?format=png" >"$TMP/big.code" &
curl_pid=$!
BG_PIDS+=("$curl_pid")
for _ in $(seq 1 200); do
  [ "$(in_flight)" -ge 2 ] && break
  sleep 0.02
done
[ "$(in_flight)" -ge 2 ] || fail "the 12-megapixel request was not in flight"
t0=$(now)
"${PODMAN[@]}" kill --signal TERM "$NAME" >/dev/null
wait "$curl_pid" || true
echo "in-flight request answered $(cat "$TMP/big.code") $(elapsed "$t0") s after SIGTERM"
[ "$(cat "$TMP/big.code")" = 200 ] || fail "the in-flight request did not complete with 200"
"$PY" scripts/container_check.py check-png "$TMP/big-out.png" --header-only --width 4000 --height 3000 ||
  fail "the in-flight request's answer is not the colorized photo"
exit_code=$("${PODMAN[@]}" wait "$NAME")
echo "container exited $exit_code, $(elapsed "$t0") s after SIGTERM"
[ "$exit_code" = 0 ] || fail "exit code $exit_code after SIGTERM"

log "summary"
echo "image $IMAGE: $((IMAGE_SIZE / 1000000)) MB ($((BASE_SIZE / 1000000)) MB Debian minbase" \
  "+ $(((IMAGE_SIZE - BASE_SIZE) / 1000000)) MB binary and ONNX Runtime)"
echo "time to ready (podman run -> /readyz 200): $TIME_TO_READY s"
echo "container test passed in $((SECONDS - T_START)) s"
