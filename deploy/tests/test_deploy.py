"""Checks the deployment files against each other and against the real service.

Run from anywhere: `pytest deploy/tests` (scripts/lint-deploy.sh runs it with the linters).

Static checks always run. Two groups need the service itself:

* command line / environment: every `COLORIZER_*` variable and every `--flag` that the
  Dockerfile, docker-compose.yml, the CloudFormation template, the Kubernetes manifests
  and deploy/README.md use must appear in the binary's `--help` output. The binary is
  `$COLORIZER_BIN` (default target/debug/colorizer); the tests are skipped, saying so,
  only when it does not exist.
* metric names: every metric that the Grafana dashboard and the alert rules query must
  appear in a live /metrics text, from `$COLORIZER_METRICS_URL` (fetched) or
  `$COLORIZER_METRICS_FILE` (a saved copy). Skipped, saying so, when neither is set.

Set DEPLOY_TESTS_STRICT=1 to turn those skips into failures (for CI once it provides both).
`$PROMTOOL` (or promtool on PATH) is used to parse the dashboard's PromQL when present.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed (scripts/lint-deploy.sh installs it)")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
PROM_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD_DIR = DEPLOY / "grafana" / "dashboards"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"
ECS_TEMPLATE = DEPLOY / "ecs" / "colorizer.yaml"
K8S_DIR = DEPLOY / "k8s"
README = DEPLOY / "README.md"
FETCH_ORT = ROOT / "scripts" / "fetch-ort.sh"
CARGO_CONFIG = ROOT / ".cargo" / "config.toml"
CARGO_TOML = ROOT / "Cargo.toml"

STRICT = os.environ.get("DEPLOY_TESTS_STRICT", "") not in ("", "0", "false")

# The service's metric contract (DESIGN.md / issue 5): name -> type.
CONTRACT_METRICS = {
    "colorizer_http_requests_total": "counter",
    "colorizer_http_request_duration_seconds": "histogram",
    "colorizer_queue_wait_seconds": "histogram",
    "colorizer_stage_seconds": "histogram",
    "colorizer_input_megapixels": "histogram",
    "colorizer_in_flight_requests": "gauge",
    "colorizer_queue_depth": "gauge",
    "colorizer_pool_size": "gauge",
    "colorizer_rejected_total": "counter",
    "colorizer_model_info": "gauge",
    "colorizer_ready": "gauge",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Variables of this test itself, documented in deploy/README.md; not service settings.
TEST_ONLY_VARS = {"COLORIZER_BIN", "COLORIZER_METRICS_URL", "COLORIZER_METRICS_FILE"}


def skip_or_fail(message: str):
    if STRICT:
        pytest.fail(message + " (DEPLOY_TESTS_STRICT is set)")
    pytest.skip(message)


# --------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------


def parse_dockerfile(path: Path = DOCKERFILE) -> list[dict]:
    """Instructions as dicts: {instr, args (str), line, stage}. Joins continuations and
    drops comment lines, as BuildKit does (parser directives are comments here too)."""
    instructions = []
    buf, start = "", None
    stage = -1
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment lines inside a continuation are removed
        if start is None:
            start = lineno
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        instr, _, args = buf.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stage += 1
        instructions.append({"instr": instr, "args": args.strip(), "line": start, "stage": stage})
        buf, start = "", None
    return instructions


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form instruction, or None for shell form."""
    try:
        value = json.loads(args)
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def dockerfile_stages() -> list[list[dict]]:
    ins = parse_dockerfile()
    n = max(i["stage"] for i in ins) + 1
    return [[i for i in ins if i["stage"] == s] for s in range(n)]


def dockerfile_env(instructions: list[dict]) -> dict[str, str]:
    env = {}
    for i in instructions:
        if i["instr"] != "ENV":
            continue
        for tok in shlex.split(i["args"]):
            if "=" in tok:
                k, v = tok.split("=", 1)
                env[k] = v
    return env


def dockerfile_args() -> dict[str, str]:
    out = {}
    for i in parse_dockerfile():
        if i["instr"] == "ARG" and "=" in i["args"]:
            k, v = i["args"].split("=", 1)
            out.setdefault(k.strip(), v.strip().strip('"'))
    return out


class CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form intrinsic tags."""


def _cfn_tag(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


@functools.lru_cache(maxsize=None)
def cfn() -> dict:
    return yaml.load(ECS_TEMPLATE.read_text(), Loader=CfnLoader)


def k8s_files() -> list[Path]:
    return sorted(K8S_DIR.rglob("*.yaml")) + sorted(K8S_DIR.rglob("*.yml"))


@functools.lru_cache(maxsize=None)
def k8s_docs() -> list[tuple[Path, dict]]:
    docs = []
    for f in k8s_files():
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                docs.append((f, d))
    return docs


def k8s_one(kind: str) -> dict:
    found = [d for _, d in k8s_docs() if d.get("kind") == kind]
    assert len(found) == 1, f"expected exactly one {kind} under deploy/k8s, found {len(found)}"
    return found[0]


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_names(env) -> list[str]:
    """Names from a compose environment block (dict or list of NAME=value)."""
    if isinstance(env, dict):
        return list(env)
    return [e.split("=", 1)[0] for e in env or []]


def parse_duration_s(value) -> float:
    """Compose durations like 45s, 1m30s, or a number of seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    total, matched = 0.0, False
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms|us)", str(value)):
        matched = True
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    assert matched, f"cannot parse duration {value!r}"
    return total


# --------------------------------------------------------------------------------------
# PromQL expressions used by the dashboard and the alert rules
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def dashboards() -> list[tuple[Path, dict]]:
    files = sorted(DASHBOARD_DIR.glob("*.json"))
    assert files, "no dashboard JSON under deploy/grafana/dashboards"
    return [(f, json.loads(f.read_text())) for f in files]


def iter_panels(panels):
    for p in panels:
        yield p
        yield from iter_panels(p.get("panels", []))


def dashboard_exprs() -> list[tuple[str, str]]:
    """(where, expr) for every panel target and query variable."""
    out = []
    for f, d in dashboards():
        for p in iter_panels(d.get("panels", [])):
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"{f.name}: panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                q = v.get("query")
                q = q.get("query") if isinstance(q, dict) else q
                if q:
                    out.append((f"{f.name}: variable {v['name']}", q))
    return out


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def alert_exprs() -> list[tuple[str, str]]:
    return [(f"alerts.yml: {r.get('alert') or r.get('record')}", r["expr"]) for r in alert_rules()]


def all_exprs() -> list[tuple[str, str]]:
    return dashboard_exprs() + alert_exprs()


METRIC_RE = re.compile(r"\bcolorizer_[a-z0-9_]+")


def metric_names(expr: str) -> set[str]:
    return set(METRIC_RE.findall(expr))


def grafana_to_promql(expr: str) -> str:
    """Substitute Grafana variables so promtool can parse the expression."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    expr = re.sub(r"label_values\(([^,()]+(?:\{[^}]*\})?)\s*,\s*\w+\)", r"\1", expr)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def label_names_used(expr: str) -> set[str]:
    names = set()
    for body in re.findall(r"\{([^{}]*)\}", expr):
        names |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", body))
    for body in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        names |= {n.strip() for n in body.split(",") if n.strip()}
    return names


# --------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_with_exec_healthcheck():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "Dockerfile must be multi-stage"
    final = stages[-1]
    base = final[0]["args"].split()[0]
    assert ":" in base and not base.endswith(":latest"), f"runtime base image must be pinned to a tag: {base}"
    users = [i["args"] for i in final if i["instr"] == "USER"]
    assert users, "runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), "runtime stage must not run as root"
    assert user.isdigit(), "USER should be numeric so Kubernetes runAsNonRoot can verify it"
    # No shell, build tools or package manager at run time: nothing is RUN in the final stage.
    assert not [i for i in final if i["instr"] == "RUN"], "runtime stage must not RUN anything"
    hc = [i for i in final if i["instr"] == "HEALTHCHECK"]
    assert len(hc) == 1, "runtime stage needs one HEALTHCHECK"
    cmd = hc[0]["args"].split("CMD", 1)[1].strip()
    argv = exec_form(cmd)
    assert argv, "HEALTHCHECK must use the exec form (the image has no shell)"
    assert argv[1] == "healthcheck", f"HEALTHCHECK should run `colorizer healthcheck`, got {argv}"
    for instr in ("ENTRYPOINT", "CMD"):
        found = [i for i in final if i["instr"] == instr]
        assert found and exec_form(found[-1]["args"]), f"{instr} must use the exec form"
    exposed = {i["args"] for i in final if i["instr"] == "EXPOSE"}
    assert "8080" in exposed


def test_dockerfile_builds_locked_release_and_ships_ort():
    ins = parse_dockerfile()
    runs = " ".join(i["args"] for i in ins if i["instr"] == "RUN")
    assert "cargo build --release --locked" in runs
    assert re.search(r"onnxruntime==\$\{?ORT_VERSION\}?", runs), "the ort stage must pip-download onnxruntime==${ORT_VERSION}"
    final = dockerfile_stages()[-1]
    copies = [i["args"] for i in final if i["instr"] == "COPY"]
    env = dockerfile_env(final)
    lib = env.get("COLORIZER_ORT_LIB")
    assert lib, "runtime stage must set COLORIZER_ORT_LIB"
    assert env.get("ORT_DYLIB_PATH") in (None, lib), "ORT_DYLIB_PATH and COLORIZER_ORT_LIB must name the same file"
    assert any(c.split()[-1] == lib for c in copies), f"no COPY puts the ONNX Runtime library at {lib}"
    assert any(c.split()[-1] == "/usr/local/bin/colorizer" for c in copies)
    entry = exec_form([i for i in final if i["instr"] == "ENTRYPOINT"][-1]["args"])
    assert entry[0] == "/usr/local/bin/colorizer"


def fetch_ort_version() -> str | None:
    if not FETCH_ORT.exists():
        return None
    m = re.search(r"^\s*(?:export\s+)?ORT_VERSION=[\"']?(?:\$\{ORT_VERSION:-)?([0-9][0-9.]*)", FETCH_ORT.read_text(), re.M)
    assert m, "scripts/fetch-ort.sh has no ORT_VERSION=X.Y.Z line"
    return m.group(1)


def test_ort_version_matches_fetch_script():
    docker_version = dockerfile_args().get("ORT_VERSION")
    assert docker_version, "Dockerfile must declare ARG ORT_VERSION=X.Y.Z"
    script_version = fetch_ort_version()
    if script_version is None:
        skip_or_fail("scripts/fetch-ort.sh is missing: cannot compare its ORT_VERSION with the Dockerfile's")
    assert docker_version == script_version, (
        f"Dockerfile ORT_VERSION {docker_version} != scripts/fetch-ort.sh ORT_VERSION {script_version}"
    )
    if CARGO_CONFIG.exists():
        for v in re.findall(r"libonnxruntime\.so\.([0-9][0-9.]*[0-9])", CARGO_CONFIG.read_text()):
            assert v == docker_version, f".cargo/config.toml names onnxruntime {v}, Dockerfile {docker_version}"


def test_rust_image_is_at_least_msrv():
    m = re.search(r'^rust-version\s*=\s*"([0-9.]+)"', CARGO_TOML.read_text(), re.M)
    if not m:
        pytest.skip("Cargo.toml declares no rust-version")
    image = dockerfile_args().get("RUST_VERSION")
    assert image, "Dockerfile must declare ARG RUST_VERSION"
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(image) >= as_tuple(m.group(1))[: len(as_tuple(image))], (
        f"Dockerfile RUST_VERSION {image} is older than Cargo.toml rust-version {m.group(1)}"
    )


# --------------------------------------------------------------------------------------
# .dockerignore
# --------------------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, str]]:
    pats = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line[1:] if negate else line
        pats.append((negate, pat.strip("/")))
    return pats


def _pattern_matches(pat: str, path: str) -> bool:
    """Docker's rule: a pattern matches a path or any of its parent directories."""
    parts = path.split("/")
    for n in range(1, len(parts) + 1):
        prefix = "/".join(parts[:n])
        if _glob_match(pat, prefix):
            return True
    return False


def _glob_match(pat: str, path: str) -> bool:
    regex = ""
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pat.startswith("**", i):
            regex += ".*"
            i += 2
        else:
            c = pat[i]
            regex += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
            i += 1
    return re.fullmatch(regex, path) is not None


def dockerignored(path: str) -> bool:
    excluded = False
    for negate, pat in dockerignore_patterns():
        if _pattern_matches(pat, path):
            excluded = not negate
    return excluded


def build_inputs() -> list[str]:
    """Files the release build reads: manifests, build script, sources, and every file
    that `include_bytes!`/`include_str!` embeds (the model, the web page...)."""
    # Representative paths, checked whether or not they exist yet: the binary embeds the
    # default model and the web page (build.rs builds the include_bytes! list at build time).
    inputs = ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs", "build.rs", ".cargo/config.toml",
              "models/colorizer.onnx", "models/colorizer-default.onnx", "models/MODEL_CARD.md",
              "web/index.html", "openapi/openapi.json", "tests/fixtures/x.png"]
    for d in ("models", "web", "openapi"):
        if (ROOT / d).is_dir():
            inputs += [str(p.relative_to(ROOT)) for p in (ROOT / d).rglob("*") if p.is_file()]
    for rs in list((ROOT / "src").rglob("*.rs")) + [ROOT / "build.rs"]:
        if not rs.exists():
            continue
        for rel in re.findall(r'include_(?:bytes|str)!\(\s*"([^"]+)"', rs.read_text()):
            target = (rs.parent / rel).resolve()
            try:
                inputs.append(str(target.relative_to(ROOT)))
            except ValueError:
                pytest.fail(f"{rs.relative_to(ROOT)} embeds {rel}, outside the repository: the Docker build cannot see it")
    return inputs


def test_dockerignore_keeps_build_inputs_and_drops_junk():
    kept_out = [p for p in build_inputs() if dockerignored(p)]
    assert not kept_out, f".dockerignore excludes files the build needs: {kept_out}"
    for junk in ("target/release/colorizer", ".git/HEAD", ".venv/bin/python", ".venv-deploy/bin/python",
                 "training/.venv/bin/python", ".pack/x", "web/node_modules/x/index.js", "deploy/k8s/service.yaml"):
        assert dockerignored(junk), f".dockerignore should exclude {junk}"


# --------------------------------------------------------------------------------------
# docker-compose.yml, Prometheus, Grafana
# --------------------------------------------------------------------------------------


def drain_timeout_default() -> int:
    return 30  # the binary's default (--drain-timeout-s), unless a file overrides it


def test_compose_stack():
    c = compose()
    services = c["services"]
    assert {"colorizer", "prometheus", "grafana"} <= set(services)
    svc = services["colorizer"]
    assert svc.get("build"), "compose must build the service from the Dockerfile"
    assert svc.get("read_only") is True
    assert "ALL" in svc.get("cap_drop", [])
    env = svc.get("environment", {})
    drain = drain_timeout_default()
    if isinstance(env, dict) and "COLORIZER_DRAIN_TIMEOUT_S" in env:
        drain = int(re.sub(r"\$\{[A-Z_]+:-(\d+)\}", r"\1", str(env["COLORIZER_DRAIN_TIMEOUT_S"])))
    assert parse_duration_s(svc.get("stop_grace_period", "10s")) >= drain + 5, "stop_grace_period must exceed the drain timeout"
    # Bind mounts must point at files that exist.
    for name in ("prometheus", "grafana"):
        for vol in services[name].get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name} mounts missing {src}"
    prom_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    cfg_arg = [a for a in services["prometheus"]["command"] if a.startswith("--config.file=")][0].split("=", 1)[1]
    cfg_dir = str(Path(cfg_arg).parent)
    assert (ROOT / prom_mounts[cfg_dir] / Path(cfg_arg).name).resolve() == PROM_CONFIG.resolve()


def test_prometheus_config_scrapes_the_service_and_loads_alerts():
    cfg = yaml.safe_load(PROM_CONFIG.read_text())
    rule_files = [PROM_CONFIG.parent / r for r in cfg["rule_files"]]
    assert ALERTS.resolve() in [r.resolve() for r in rule_files]
    job = [j for j in cfg["scrape_configs"] if j["job_name"] == "colorizer"]
    assert job, "no scrape job named colorizer (the alert rules use job=\"colorizer\")"
    job = job[0]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    ports = [sd.get("port") for sd in job.get("dns_sd_configs", [])]
    ports += [int(t.rsplit(":", 1)[1]) for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert ports and all(p == 8080 for p in ports)


def test_alert_rules_cover_errors_latency_saturation():
    rules = {r["alert"]: r for r in alert_rules() if "alert" in r}
    exprs = {name: r["expr"] for name, r in rules.items()}

    def has(pred):
        return [n for n, e in exprs.items() if pred(e)]

    assert has(lambda e: "colorizer_http_requests_total" in e and '"5..' in e), "no 5xx error-ratio alert"
    assert has(lambda e: "histogram_quantile(0.99" in e and "colorizer_http_request_duration_seconds_bucket" in e), "no p99 latency alert"
    assert has(lambda e: "colorizer_queue_depth" in e), "no queue-depth saturation alert"
    assert has(lambda e: re.search(r'reason=~?"[^"]*overloaded', e) and "memory" in e), "no shedding alert (overloaded and memory)"
    for name, r in rules.items():
        assert r.get("for"), f"{name}: give alerts a `for` duration"
        assert r.get("labels", {}).get("severity") in ("critical", "warning", "info"), name
        assert r.get("annotations", {}).get("summary"), name


def test_prometheusrule_mirrors_alerts_yml():
    rule = k8s_one("PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"], (
        "deploy/k8s/monitoring/prometheusrule.yaml spec.groups differs from deploy/prometheus/alerts.yml"
    )


def test_grafana_provisioning_matches_compose():
    ds = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())
    prom = [d for d in ds["datasources"] if d["type"] == "prometheus"]
    assert prom and prom[0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "colorizer.yml").read_text())["providers"]
    grafana_mounts = {v.split(":")[1]: v.split(":")[0] for v in compose()["services"]["grafana"]["volumes"]}
    for p in providers:
        path = p["options"]["path"]
        assert path in grafana_mounts, f"dashboard provider path {path} is not mounted in compose"
        assert (ROOT / grafana_mounts[path]).resolve() == DASHBOARD_DIR.resolve()
    assert "/etc/grafana/provisioning" in grafana_mounts


def test_dashboard_panels():
    for f, d in dashboards():
        assert d.get("uid") and d.get("title")
        ids = [p["id"] for p in iter_panels(d["panels"])]
        assert len(ids) == len(set(ids)), f"{f.name}: duplicate panel ids"
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables.get("ds", {}).get("type") == "datasource", "dashboard needs a datasource variable `ds`"
        for p in iter_panels(d["panels"]):
            if p["type"] == "row":
                continue
            assert p.get("gridPos"), p["title"]
            assert p["datasource"] == {"type": "prometheus", "uid": "${ds}"}, p["title"]
            for t in p["targets"]:
                assert t["datasource"]["uid"] == "${ds}", p["title"]
    exprs = " ".join(e for _, e in dashboard_exprs())
    wanted = {
        "request rate": "rate(colorizer_http_requests_total",
        "error rate": 'status=~"5..',
        "latency p50": "histogram_quantile(0.5, sum by (le) (rate(colorizer_http_request_duration_seconds_bucket",
        "latency p90": "histogram_quantile(0.9, sum by (le) (rate(colorizer_http_request_duration_seconds_bucket",
        "latency p99": "histogram_quantile(0.99, sum by (le) (rate(colorizer_http_request_duration_seconds_bucket",
        "queue depth": "colorizer_queue_depth",
        "in flight": "colorizer_in_flight_requests",
        "stage split": "colorizer_stage_seconds_sum",
        "rejected rate": "rate(colorizer_rejected_total",
    }
    missing = [k for k, v in wanted.items() if v not in exprs]
    assert not missing, f"dashboard lacks: {missing}"


def test_metric_names_follow_the_contract():
    """Static: names must be contract names; histograms only through _bucket/_sum/_count."""
    bad = []
    for where, expr in all_exprs():
        for name in metric_names(expr):
            if CONTRACT_METRICS.get(name) in ("counter", "gauge"):
                continue
            base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
            if base and CONTRACT_METRICS.get(base) == "histogram":
                continue
            bad.append(f"{where}: {name}")
    assert not bad, "metric names outside the contract (or a bare histogram name):\n" + "\n".join(bad)


def find_promtool() -> str | None:
    return os.environ.get("PROMTOOL") or shutil.which("promtool")


def test_dashboard_promql_parses():
    exprs = [(w, grafana_to_promql(e)) for w, e in dashboard_exprs()]
    promtool = find_promtool()
    if not promtool:
        # Fallback: bracket balance and quoting only.
        for where, e in exprs:
            stripped = re.sub(r'"(?:\\.|[^"\\])*"', '""', e)
            assert stripped.count('"') % 2 == 0, where
            for o, c in ("()", "{}", "[]"):
                assert stripped.count(o) == stripped.count(c), f"{where}: unbalanced {o}{c}: {e}"
        pytest.skip("promtool not found (set PROMTOOL): checked bracket balance only")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "dashboard-rules.yml"
        f.write_text(yaml.safe_dump(rules))
        r = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True)
    index = "\n".join(f"expr_{i}: {w}" for i, (w, _) in enumerate(exprs))
    assert r.returncode == 0, f"promtool rejected a dashboard query:\n{r.stdout}{r.stderr}\n{index}"


# --------------------------------------------------------------------------------------
# ECS / CloudFormation
# --------------------------------------------------------------------------------------


def cfn_resources(rtype: str) -> list[dict]:
    return [r for r in cfn()["Resources"].values() if r["Type"] == rtype]


def cfn_param_default(ref) -> int:
    assert isinstance(ref, dict) and "Ref" in ref, ref
    return int(cfn()["Parameters"][ref["Ref"]]["Default"])


def ecs_container() -> dict:
    (td,) = cfn_resources("AWS::ECS::TaskDefinition")
    (c,) = [c for c in td["Properties"]["ContainerDefinitions"] if c["Name"] == "colorizer"]
    return c


def test_ecs_task_definition():
    (td,) = cfn_resources("AWS::ECS::TaskDefinition")
    props = td["Properties"]
    assert props["RequiresCompatibilities"] == ["FARGATE"] and props["NetworkMode"] == "awsvpc"
    assert cfn_param_default(props["Cpu"]) == 2048 and cfn_param_default(props["Memory"]) == 4096
    c = ecs_container()
    assert c["HealthCheck"]["Command"][0] == "CMD", "container health check must be exec form (no shell in the image)"
    assert c["HealthCheck"]["Command"][2] == "healthcheck"
    assert c["LogConfiguration"]["LogDriver"] == "awslogs"
    assert c["ReadonlyRootFilesystem"] is True
    env = {e["Name"]: e["Value"] for e in c["Environment"]}
    drain = cfn_param_default(env["COLORIZER_DRAIN_TIMEOUT_S"])
    stop = cfn_param_default(c["StopTimeout"])
    assert stop >= drain + 10, f"StopTimeout {stop} must be >= drain timeout {drain} + 10"
    assert stop <= 120, "Fargate caps stopTimeout at 120 s"
    assert [m["ContainerPort"] for m in c["PortMappings"]] == [8080]


def test_ecs_service_alb_and_autoscaling():
    (tg,) = cfn_resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    assert tg["Properties"]["HealthCheckPath"] == "/readyz"
    assert tg["Properties"]["Port"] == 8080 and tg["Properties"]["TargetType"] == "ip"
    (svc,) = cfn_resources("AWS::ECS::Service")
    lbs = svc["Properties"]["LoadBalancers"]
    assert lbs[0]["ContainerName"] == "colorizer" and lbs[0]["ContainerPort"] == 8080
    policies = cfn_resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    kinds = {p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]
             for p in policies if p["Properties"]["PolicyType"] == "TargetTrackingScaling"}
    assert kinds & {"ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"}, kinds
    for p in ("ImageUri", "VpcId", "ServiceSubnetIds", "LoadBalancerSubnetIds"):
        assert p in cfn()["Parameters"]


# --------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------


def k8s_container() -> dict:
    dep = k8s_one("Deployment")
    (c,) = [c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "colorizer"]
    return c


def test_k8s_deployment():
    dep = k8s_one("Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = k8s_container()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in c:
            port = c[probe]["httpGet"]["port"]
            assert port in [p["name"] for p in c["ports"]] + [p["containerPort"] for p in c["ports"]], probe
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True or sc.get("runAsNonRoot") is True
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    drain = int(env.get("COLORIZER_DRAIN_TIMEOUT_S") or drain_timeout_default())
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod["terminationGracePeriodSeconds"]
    assert grace >= pre_stop + drain + 5, f"terminationGracePeriodSeconds {grace} < preStop {pre_stop} + drain {drain} + 5"
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") == "true":
        assert int(ann["prometheus.io/port"]) in [p["containerPort"] for p in c["ports"]]
        assert ann.get("prometheus.io/path", "/metrics") == "/metrics"


# --------------------------------------------------------------------------------------
# Memory budget against the memory limits
# --------------------------------------------------------------------------------------

SIZE_UNITS = {
    "": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3, "gib": 1024**3,
}


def parse_size(text: str, docker: bool = False) -> int:
    """Sizes as the service (COLORIZER_MEMORY_BUDGET) and Kubernetes write them: 2GiB, 4Gi, 512MiB.
    Docker reads one-letter units (compose's `4g`) as binary: pass docker=True for those."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(text))
    assert m, f"not a size: {text!r}"
    unit = m.group(2).lower()
    if docker and unit in ("k", "m", "g"):
        unit += "i"
    return int(float(m.group(1)) * SIZE_UNITS[unit])


def compose_default(value: str) -> str:
    """The default of a compose `${VAR:-default}` value."""
    m = re.fullmatch(r"\$\{[A-Z0-9_]+:-([^}]*)\}", value)
    return m.group(1) if m else value


def assert_budget_fits(where: str, budget: int, limit: int):
    # Half the limit, as the service's own default: the rest is the process (models, sessions,
    # allocator slack; about 350 MiB at pool 2) and what the estimate does not see.
    assert limit // 4 <= budget <= limit // 2, (
        f"{where}: COLORIZER_MEMORY_BUDGET {budget} should be about half the memory limit {limit} (between a quarter and a half)"
    )


def test_memory_budget_matches_the_memory_limits():
    env = {e["Name"]: e["Value"] for e in ecs_container()["Environment"]}
    ref = env["COLORIZER_MEMORY_BUDGET"]
    budget = parse_size(cfn()["Parameters"][ref["Ref"]]["Default"])
    (td,) = cfn_resources("AWS::ECS::TaskDefinition")
    assert_budget_fits("ECS", budget, cfn_param_default(td["Properties"]["Memory"]) * 1024**2)

    c = k8s_container()
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert_budget_fits("k8s", parse_size(env["COLORIZER_MEMORY_BUDGET"]), parse_size(c["resources"]["limits"]["memory"]))

    svc = compose()["services"]["colorizer"]
    budget = parse_size(compose_default(svc["environment"]["COLORIZER_MEMORY_BUDGET"]))
    limit = parse_size(svc["deploy"]["resources"]["limits"]["memory"], docker=True)
    assert_budget_fits("docker-compose.yml", budget, limit)


def test_k8s_selectors_line_up():
    dep = k8s_one("Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    matches = lambda sel: all(pod_labels.get(k) == v for k, v in sel.items())  # noqa: E731
    assert matches(dep["spec"]["selector"]["matchLabels"])
    svc = k8s_one("Service")
    assert matches(svc["spec"]["selector"])
    container_ports = {p["name"]: p["containerPort"] for p in k8s_container()["ports"]}
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in container_ports or p["targetPort"] in container_ports.values()
    pdb = k8s_one("PodDisruptionBudget")
    assert matches(pdb["spec"]["selector"]["matchLabels"])
    hpa = k8s_one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2, "keep two replicas so the PDB allows voluntary evictions"
    sm = k8s_one("ServiceMonitor")
    assert all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
    svc_port_names = {p["name"] for p in svc["spec"]["ports"]}
    for ep in sm["spec"]["endpoints"]:
        assert ep["port"] in svc_port_names and ep.get("path", "/metrics") == "/metrics"


# --------------------------------------------------------------------------------------
# Command lines and environment against the binary's --help
# --------------------------------------------------------------------------------------


def invocations() -> list[tuple[str, list[str]]]:
    """(where, argv after the program name) for every way the files start the binary."""
    out = []
    final = dockerfile_stages()[-1]
    entry = exec_form([i for i in final if i["instr"] == "ENTRYPOINT"][-1]["args"])
    cmd = exec_form([i for i in final if i["instr"] == "CMD"][-1]["args"])
    out.append(("Dockerfile ENTRYPOINT+CMD", entry[1:] + cmd))
    hc = exec_form([i for i in final if i["instr"] == "HEALTHCHECK"][-1]["args"].split("CMD", 1)[1].strip())
    out.append(("Dockerfile HEALTHCHECK", hc[1:]))
    svc = compose()["services"]["colorizer"]
    if svc.get("command"):
        c = svc["command"]
        out.append(("docker-compose.yml command", c if isinstance(c, list) else shlex.split(c)))
    hct = svc.get("healthcheck", {}).get("test")
    if hct and hct[0] in ("CMD", "CMD-SHELL"):
        out.append(("docker-compose.yml healthcheck", hct[2:] if hct[0] == "CMD" else shlex.split(hct[1])[1:]))
    c = ecs_container()
    if c.get("Command"):
        out.append(("ECS Command", c["Command"]))
    out.append(("ECS HealthCheck", c["HealthCheck"]["Command"][2:]))
    kc = k8s_container()
    out.append(("k8s args", (kc.get("command") or [])[1:] + (kc.get("args") or [])))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if "exec" in kc.get(probe, {}):
            out.append((f"k8s {probe}", kc[probe]["exec"]["command"][1:]))
    return out


def env_vars_used() -> dict[str, set[str]]:
    """COLORIZER_* name -> files using it. Structured places plus every mention in the
    deploy files' text (comments and README included: documentation must be right too)."""
    used: dict[str, set[str]] = {}

    def add(name, where):
        if name.startswith("COLORIZER_"):
            used.setdefault(name, set()).add(where)

    for name in dockerfile_env(dockerfile_stages()[-1]):
        add(name, "Dockerfile ENV")
    for name in env_names(compose()["services"]["colorizer"].get("environment")):
        add(name, "docker-compose.yml environment")
    c = ecs_container()
    for e in c.get("Environment", []) + (c.get("Secrets") or {}).get("Fn::If", [None, []])[1]:
        add(e["Name"], "ECS Environment/Secrets")
    for e in k8s_container().get("env", []):
        add(e["name"], "k8s env")
    texts = [DOCKERFILE, COMPOSE, ECS_TEMPLATE, README, *k8s_files()]
    for f in texts:
        if f.exists():
            for name in re.findall(r"\bCOLORIZER_[A-Z0-9_]*[A-Z0-9]\b", f.read_text()):
                if name not in TEST_ONLY_VARS:
                    add(name, str(f.relative_to(ROOT)))
    return used


@functools.lru_cache(maxsize=None)
def help_text(*args: str) -> str:
    binary = os.environ.get("COLORIZER_BIN", str(ROOT / "target" / "debug" / "colorizer"))
    path = Path(binary) if os.path.isabs(binary) else ROOT / binary
    if not path.exists():
        skip_or_fail(f"colorizer binary not found at {path}: build it (cargo build) or set COLORIZER_BIN")
    r = subprocess.run([str(path), *args, "--help"], capture_output=True, text=True, timeout=30,
                       env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"})
    assert r.returncode == 0, f"`colorizer {' '.join(args)} --help` exited {r.returncode}: {r.stderr}"
    return r.stdout + r.stderr


def help_for(subcommand: str) -> str:
    return help_text() + "\n" + help_text(subcommand)


def flags_in(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", text))


def test_command_lines_use_real_subcommands_and_flags():
    top = help_text()
    problems = []
    for where, argv in invocations():
        sub = argv[0] if argv and not argv[0].startswith("-") else "serve"
        if not re.search(rf"^\s+{re.escape(sub)}\b", top, re.M):
            problems.append(f"{where}: subcommand {sub!r} not listed in `colorizer --help`")
            continue
        known = flags_in(help_for(sub))
        for arg in argv:
            if arg.startswith("--") and arg.split("=", 1)[0] not in known:
                problems.append(f"{where}: {arg.split('=', 1)[0]} not in `colorizer {sub} --help`")
    assert not problems, "\n".join(problems)


def test_environment_variables_are_real():
    help_all = help_for("serve")
    unknown = {name: sorted(w) for name, w in env_vars_used().items() if not re.search(rf"\b{name}\b", help_all)}
    assert not unknown, "COLORIZER_* variables not in `colorizer --help`/`colorizer serve --help`: " + json.dumps(unknown, indent=1)


def test_readme_flags_are_real():
    """Long flags that deploy/README.md shows on a `colorizer` command line."""
    assert README.exists(), "deploy/README.md is missing"
    problems = []
    for line in README.read_text().splitlines():
        m = re.search(r"\bcolorizer(?::\S+)?\s+(serve|healthcheck)\b(.*)", line)
        if not m:
            continue
        known = flags_in(help_for(m.group(1)))
        for flag in flags_in(m.group(2)):
            if flag not in known:
                problems.append(f"README: {flag} not in `colorizer {m.group(1)} --help`: {line.strip()}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------
# Metric names against a live /metrics
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def live_metrics() -> str:
    url = os.environ.get("COLORIZER_METRICS_URL")
    path = os.environ.get("COLORIZER_METRICS_FILE")
    if url:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 (test-provided URL)
            return r.read().decode()
    if path:
        return Path(path).read_text()
    skip_or_fail("no live metrics: set COLORIZER_METRICS_URL (e.g. http://127.0.0.1:8080/metrics) or COLORIZER_METRICS_FILE")


def parse_exposition(text: str) -> tuple[set[str], dict[str, set[str]]]:
    """Sample names, and label names seen per sample name."""
    samples: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
        if not m:
            continue
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
        samples.setdefault(m.group(1), set()).update(labels)
    return set(samples), samples


def test_queried_metrics_exist_in_live_metrics():
    names, _ = parse_exposition(live_metrics())
    missing = {}
    for where, expr in all_exprs():
        for name in metric_names(expr) - names:
            missing.setdefault(name, []).append(where)
    assert not missing, (
        "metrics queried by the dashboard/alerts but absent from the live /metrics "
        "(a labelled metric appears only once a label set exists: the service should "
        "pre-initialise them, or the CI sample should exercise them):\n" + json.dumps(missing, indent=1)
    )


def test_queried_labels_exist_in_live_metrics():
    names, labels_by_sample = parse_exposition(live_metrics())
    ours = set().union(*(v for k, v in labels_by_sample.items() if k.startswith("colorizer_"))) | {"job", "instance", "le"}
    missing = {}
    for where, expr in all_exprs():
        for label in label_names_used(expr) - ours:
            missing.setdefault(label, []).append(where)
    assert not missing, "label names queried but absent from every colorizer_* sample:\n" + json.dumps(missing, indent=1)

