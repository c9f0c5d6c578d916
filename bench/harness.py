#!/usr/bin/env python3
"""Benchmark harness: the service against raw ONNX Runtime (the limit) and the Python
peer, side by side in one run. Called by bench/run.sh (which builds and installs first); run with
the peer's venv (numpy, Pillow, matplotlib).

What it does, in order:
  images     synthetic gray scenes as JPEG: 256x256 (several), 1, 4 and 12 megapixels
  check      one image through both services: same size, PNG, mean RGB difference
  raw        bench/ort-raw (Session::run only): 1 session x 2 threads, 2 sessions x 1 thread
  cold       exec -> /readyz 200, several times, for the service and the peer
  load       oha at c = 1, 2, 8, 32 (256x256) and c = 2 (1, 4, 12 MP) against each target;
             /proc sampling (CPU, peak RSS via VmHWM reset), /metrics stage histograms (service)
  raw again  the limit measured again at the end (drift on a shared machine)
  report     bench/out/<run>/results.json, plots, bench/REPORT.md

Extra service binaries (`--service LABEL=BIN[:POOLxTHREADS]`) are measured in the same run, which is
how before/after of a patch is shown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from procfs import machine_busy_ticks, proc_cpu_ticks, proc_status_kib

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
COMMANDS: list[str] = []  # every command line run, for the report


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rel(p: Path | str) -> str:
    p = Path(p)
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def record(cmd: list, env: dict | None = None) -> None:
    """Keeps a command line for the report, with paths relative to the repo root."""
    root = str(REPO) + "/"
    tok = lambda v: shlex.quote(str(v).replace(root, ""))  # noqa: E731
    line = " ".join([f"{k}={tok(v)}" for k, v in (env or {}).items()] + [tok(c) for c in cmd])
    line = re.sub(r"--port \d+", "--port PORT", re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line))
    if line not in COMMANDS:
        COMMANDS.append(line)


# ---------------------------------------------------------------------------------------------
# Machine


def machine() -> dict:
    cpu = "unknown"
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and cpu == "unknown":
            cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            f = line.split(":", 1)[1].split()
            flags = " ".join(x for x in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if x in f)
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    mem_gib = int(mem.split()[1]) / 1024 / 1024

    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception as e:  # noqa: BLE001
            return f"n/a ({e})"

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "simd": flags,
        "mem_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "rustc": out(["rustc", "--version"]),
        "python": platform.python_version(),
        "oha": out([str(BENCH / "out/tools/bin/oha"), "--version"]),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
    }


# ---------------------------------------------------------------------------------------------
# Images


def gray_scene(w: int, h: int, seed: int) -> np.ndarray:
    """A synthetic gray photo-like scene: sky gradient, hills, a sun, buildings, texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    yn, xn = y / h, x / w
    img = 200 - 90 * yn  # sky
    horizon = 0.55 + 0.08 * np.sin(xn * (6 + seed) + seed) + 0.04 * np.sin(xn * 23 + 2 * seed)
    ground = yn > horizon
    img = np.where(ground, 90 + 40 * np.sin(xn * 40 + yn * 15) * (yn - horizon), img)
    cx, cy, r = 0.2 + 0.6 * rng.random(), 0.2 * rng.random() + 0.1, 0.06
    img = np.where((xn - cx) ** 2 + ((yn - cy) * h / w) ** 2 < r * r, 245, img)
    for _ in range(6):  # buildings
        bx, bw, bh = rng.random(), 0.03 + 0.06 * rng.random(), 0.1 + 0.25 * rng.random()
        m = (xn > bx) & (xn < bx + bw) & (yn > horizon - bh) & (yn < horizon + 0.02)
        img = np.where(m, 40 + 80 * rng.random(), img)
    img = img + rng.normal(0, 6, size=(h, w)).astype(np.float32)  # grain
    return np.clip(img, 0, 255).astype(np.uint8)


def make_images(out: Path, quick: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    sizes = {"256": (256, 256), "1MP": (1152, 864), "4MP": (2304, 1728), "12MP": (4000, 3000)}
    images = {}
    for name, (w, h) in sizes.items():
        p = out / f"gray_{name}.jpg"
        if not p.exists():
            Image.fromarray(gray_scene(w, h, seed=len(name) + w)).save(p, quality=90)
        images[name] = {"path": p, "w": w, "h": h, "mp": w * h / 1e6, "bytes": p.stat().st_size}
    return images


# ---------------------------------------------------------------------------------------------
# Processes and /proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def http_post(port: int, path: str, body: bytes, ctype: str = "image/jpeg", timeout: float = 120) -> tuple[int, dict, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": ctype})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


class Target:
    """A server under test: the Rust service or the Python peer."""

    def __init__(self, label: str, kind: str, cmd: list[str], env: dict, port: int, logdir: Path, pool: int = 0, threads: int = 0):
        self.label, self.kind, self.cmd, self.env, self.port = label, kind, cmd, env, port
        self.logdir, self.pool, self.threads = logdir, pool, threads
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> float:
        """Starts the process; returns seconds from exec to /readyz 200."""
        logf = open(self.logdir / f"{self.label}.log", "ab")
        env = dict(os.environ, **self.env)
        record(self.cmd, self.env)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}; see {self.logdir / (self.label + '.log')}")
            try:
                st, _ = http_get(self.port, "/readyz", timeout=0.5)
                if st == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.002)
        self.stop()
        raise RuntimeError(f"{self.label} not ready after {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class Sampler:
    """Samples the server's RSS every 100 ms; CPU from before/after counters; peak RSS from
    VmHWM, reset at the start through /proc/PID/clear_refs."""

    def __init__(self, pid: int):
        self.pid = pid
        self.stop_ev = threading.Event()
        self.rss_max = 0
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.cpu0 = proc_cpu_ticks(self.pid)
        self.m0 = machine_busy_ticks()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()
        return self

    def _run(self):
        while not self.stop_ev.wait(0.1):
            try:
                self.rss_max = max(self.rss_max, proc_status_kib(self.pid, "VmRSS"))
            except OSError:
                return

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.th.join()
        self.wall = time.perf_counter() - self.t0
        self.cpu = (proc_cpu_ticks(self.pid) - self.cpu0) / CLK_TCK
        m1 = machine_busy_ticks()
        self.machine_cores = (m1[0] - self.m0[0]) / CLK_TCK / self.wall
        hwm = proc_status_kib(self.pid, "VmHWM")
        self.peak_rss_mib = (hwm if self.hwm_reset else max(hwm, self.rss_max)) / 1024
        return False


# ---------------------------------------------------------------------------------------------
# Service metrics

METRIC_RE = re.compile(r'^(colorizer_stage_seconds|colorizer_queue_wait_seconds)_(sum|count)\{([^}]*)\}\s+(\S+)$')


def scrape(port: int) -> dict:
    """{(metric, stage): (sum, count)} from the service's /metrics."""
    st, body = http_get(port, "/metrics")
    out: dict = {}
    for line in body.decode().splitlines():
        m = METRIC_RE.match(line)
        if not m:
            continue
        metric, kind, labels, val = m.groups()
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = (metric, lab.get("stage", "queue"))
        s, c = out.get(key, (0.0, 0.0))
        out[key] = (s + float(val), c) if kind == "sum" else (s, c + float(val))
    return out


STAGES = ["decode", "resize", "infer", "bin_decode", "upsample", "encode"]


def stage_delta(before: dict, after: dict) -> dict:
    res = {}
    for (metric, stage), (s1, c1) in after.items():
        s0, c0 = before.get((metric, stage), (0.0, 0.0))
        n = c1 - c0
        name = "queue_wait" if metric == "colorizer_queue_wait_seconds" else stage
        res[name] = {"count": n, "mean_ms": 1000 * (s1 - s0) / n if n else None}
    return res


# ---------------------------------------------------------------------------------------------
# Load


def oha(port: int, image: Path, c: int, seconds: float, out_json: Path | None, query: str = "") -> tuple[dict, float]:
    """Runs oha; returns its JSON summary and its own CPU seconds."""
    cmd = [
        str(BENCH / "out/tools/bin/oha"), "--no-tui", "-z", f"{seconds}s", "-w", "-c", str(c), "-m", "POST",
        "-D", str(image), "-T", "image/jpeg", "--output-format", "json", "--worker-threads", "1",
        f"http://127.0.0.1:{port}/colorize{query}",
    ]
    if out_json is not None:
        record(cmd)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    stdout = p.stdout.read()
    stderr = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"oha failed ({p.returncode}): {stderr.decode()[-2000:]}")
    data = json.loads(stdout)
    if out_json is not None:
        out_json.write_bytes(stdout)
    return data, ru.ru_utime + ru.ru_stime


def load_run(t: Target, image: dict, img_name: str, c: int, seconds: float, warm_s: float, rundir: Path) -> dict:
    if warm_s > 0:
        oha(t.port, image["path"], c, warm_s, None)
    before = scrape(t.port) if t.kind == "service" else {}
    with Sampler(t.pid) as s:
        data, loadgen_cpu = oha(t.port, image["path"], c, seconds, rundir / f"oha-{t.label}-{img_name}-c{c}.json")
    after = scrape(t.port) if t.kind == "service" else {}
    summ = data["summary"]
    codes = {str(k): v for k, v in (data.get("statusCodeDistribution") or {}).items()}
    ok = codes.get("200", 0)
    total = sum(codes.values())
    errs = total - ok + sum((data.get("errorDistribution") or {}).values())
    lat = data.get("latencyPercentiles") or {}
    ms = lambda v: None if v is None else 1000 * v  # noqa: E731
    wall = summ.get("total") or s.wall
    r = {
        "target": t.label, "kind": t.kind, "pool": t.pool, "threads": t.threads, "image": img_name, "mp": image["mp"], "c": c,
        "seconds": wall, "ok": ok, "errors": errs, "status": codes, "error_kinds": data.get("errorDistribution") or {},
        "rps": ok / wall if wall else 0.0,
        "mp_per_s": ok * image["mp"] / wall if wall else 0.0,
        "p50_ms": ms(lat.get("p50")), "p90_ms": ms(lat.get("p90")), "p99_ms": ms(lat.get("p99")),
        "mean_ms": ms(summ.get("average")),
        "cpu_cores": s.cpu / s.wall, "cpu_s_per_image": s.cpu / ok if ok else None,
        "peak_rss_mib": s.peak_rss_mib, "loadgen_cpu_cores": loadgen_cpu / s.wall,
        "other_cores": max(0.0, s.machine_cores - s.cpu / s.wall - loadgen_cpu / s.wall),
        "idle_cores": max(0.0, (os.cpu_count() or 1) - s.machine_cores),
    }
    if t.kind == "service":
        r["stages"] = stage_delta(before, after)
    log(f"  {t.label:>10} {img_name:>4} c={c:<2} {r['rps']:7.2f} img/s  p50 {r['p50_ms'] or 0:8.1f} ms  p99 {r['p99_ms'] or 0:8.1f} ms  "
        f"err {errs}  cpu {r['cpu_cores']:.2f} ({1000 * (r['cpu_s_per_image'] or 0):.1f} ms/img) idle {r['idle_cores']:.2f}  rss {r['peak_rss_mib']:.0f} MiB  other {r['other_cores']:.2f}")
    return r


def raw_ort(args, sessions: int, threads: int, seconds: float, image: dict) -> dict:
    cmd = [str(args.ort_raw), "--model", str(args.model), "--lib", str(args.ort_lib), "--sessions", str(sessions),
           "--threads", str(threads), "--seconds", str(seconds), "--image", f"{image['w']}x{image['h']}"]
    record(cmd)
    m0 = machine_busy_ticks()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    stdout, stderr = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"ort-raw failed: {stderr.decode()}")
    r = json.loads(stdout)
    m1 = machine_busy_ticks()
    r["machine_cores"] = (m1[0] - m0[0]) / CLK_TCK / wall
    r["cpu_cores"] = r["cpu_ticks"] / CLK_TCK / r["seconds"]
    r["cpu_s_per_image"] = r["cpu_ticks"] / CLK_TCK / max(1, r["images"])
    log(f"  raw ORT {sessions}x{threads}: {r['images_per_s']:.2f} img/s  p50 {r['p50_ms']:.2f} ms  input {r['input_hw']}  cpu {r['cpu_cores']:.2f} cores, {1000 * r['cpu_s_per_image']:.1f} ms/img")
    return r


# ---------------------------------------------------------------------------------------------


def parse_service_spec(spec: str) -> tuple[str, Path, int, int]:
    label, rest = spec.split("=", 1)
    pool, threads = 2, 1
    if ":" in rest:
        rest, pt = rest.rsplit(":", 1)
        pool, threads = (int(v) for v in pt.lower().split("x"))
    return label, Path(rest), pool, threads


def service_target(label: str, binary: Path, model: Path, pool: int, threads: int, logdir: Path, queue: int) -> Target:
    port = free_port()
    cmd = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port), "--pool-size", str(pool), "--threads", str(threads),
           "--queue", str(queue), "--no-embedded-models", "--model", f"bench={model}"]
    t = Target(label, "service", cmd, {}, port, logdir, pool, threads)
    return t


def peer_target(args, logdir: Path) -> Target:
    port = free_port()
    cmd = [str(args.peer_python), "-m", "uvicorn", "--app-dir", str(BENCH / "python_peer"), "app:app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]
    env = {"PEER_MODEL": str(args.model), "PEER_THREADS": str(args.peer_threads)}
    return Target("python", "python", cmd, env, port, logdir, 1, args.peer_threads)


def cold_starts(t: Target, n: int) -> dict:
    times, reported = [], []
    for _ in range(n):
        times.append(t.start())
        if t.kind == "service":
            try:
                info = json.loads(http_get(t.port, "/info")[1])
                reported.append(info.get("startup_s"))
            except Exception:  # noqa: BLE001
                pass
        t.stop()
        time.sleep(0.3)
    r = {"target": t.label, "runs_s": times, "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
    if reported:
        r["startup_s_reported"] = reported
    log(f"  cold start {t.label}: median {r['median_s'] * 1000:.0f} ms (min {r['min_s'] * 1000:.0f}, max {r['max_s'] * 1000:.0f})")
    return r


def check_same_job(svc: Target, peer: Target, image: dict, outdir: Path) -> dict:
    body = image["path"].read_bytes()
    s1, h1, png1 = http_post(svc.port, "/colorize", body)
    s2, h2, png2 = http_post(peer.port, "/colorize", body)
    (outdir / "check-service.png").write_bytes(png1)
    (outdir / "check-python.png").write_bytes(png2)
    a = np.asarray(Image.open(outdir / "check-service.png").convert("RGB")).astype(np.int16)
    b = np.asarray(Image.open(outdir / "check-python.png").convert("RGB")).astype(np.int16)
    r = {"status": [s1, s2], "size_service": list(a.shape), "size_python": list(b.shape)}
    if a.shape == b.shape:
        d = np.abs(a - b)
        r.update(mean_abs_diff=float(d.mean()), p99_abs_diff=float(np.percentile(d, 99)), max_abs_diff=int(d.max()),
                 identical_fraction=float((d.max(axis=-1) == 0).mean()))
    log(f"  same-job check: {r}")
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (about 4 minutes in all)")
    default_model = REPO / "models/colorizer.onnx"
    if not default_model.exists():
        default_model = REPO / "tests/fixtures/untrained-colorizer.onnx"
    ap.add_argument("--model", type=Path, default=default_model,
                    help="ONNX model (default: models/colorizer.onnx, the service's default model; else the untrained fixture)")
    ap.add_argument("--service-bin", type=Path, default=REPO / "target/release/colorizer")
    ap.add_argument("--service", action="append", default=[],
                    help="extra service to measure in the same run: LABEL=BIN[:POOLxTHREADS] (before/after of a patch)")
    ap.add_argument("--ort-raw", type=Path, default=BENCH / "out/ort-raw-target/release/ort-raw")
    ap.add_argument("--ort-lib", type=Path, default=REPO / ".ort/libonnxruntime.so.1.31.1")
    ap.add_argument("--peer-python", type=Path, default=BENCH / "out/peer-venv/bin/python")
    ap.add_argument("--peer-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--queue", type=int, default=64, help="service --queue (64: c=32 is admitted whole)")
    ap.add_argument("--seconds", type=float, help="seconds per measured load run")
    ap.add_argument("--big", default="1MP,4MP,12MP", help="large photos measured at c=2 (comma list; empty: none)")
    ap.add_argument("--conc", default="1,2,8,32", help="concurrencies for 256x256")
    ap.add_argument("--only", default="", help="comma list of phases to run: raw,cold,service,alt,python,extra (default all)")
    ap.add_argument("--out", type=Path, help="run folder (default bench/out/run-<time>)")
    ap.add_argument("--report", type=Path, default=BENCH / "REPORT.md")
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--argv", default="", help="the command line that started the run, for the report")
    args = ap.parse_args()

    quick = args.quick
    secs = args.seconds or (5.0 if quick else 15.0)
    big_secs = secs * (1.0 if quick else 1.5)
    warm = 1.0
    raw_secs = 4.0 if quick else 10.0
    phases = set(p for p in args.only.split(",") if p) or {"raw", "cold", "service", "alt", "python", "extra"}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rundir = args.out or BENCH / "out" / f"run-{stamp}"
    rundir.mkdir(parents=True, exist_ok=True)
    log(f"run folder {rel(rundir)}; quick={quick}; {secs} s per run")
    for p in (args.service_bin, args.ort_raw, args.ort_lib, args.peer_python, args.model, BENCH / "out/tools/bin/oha"):
        if not Path(p).exists():
            raise SystemExit(f"missing {p}: run bench/run.sh (it builds and installs everything)")

    res: dict = {"machine": machine(), "quick": quick, "seconds_per_run": secs, "model": rel(args.model),
                 "argv": args.argv, "started": time.time()}
    images = make_images(BENCH / "out/images", quick)
    res["images"] = {k: {kk: (rel(vv) if kk == "path" else vv) for kk, vv in v.items()} for k, v in images.items()}
    small = images["256"]
    conc = [int(c) for c in args.conc.split(",") if c]
    big = [b for b in args.big.split(",") if b]

    if "raw" in phases:
        log("raw ONNX Runtime (Session::run only)")
        res["raw_start"] = {"1x2": raw_ort(args, 1, 2, raw_secs, small), "2x1": raw_ort(args, 2, 1, raw_secs, small)}

    main_svc = service_target("service", args.service_bin, args.model, 2, 1, rundir, args.queue)
    peer = peer_target(args, rundir)
    if "cold" in phases:
        log("cold start (exec -> /readyz 200)")
        res["cold"] = {"service": cold_starts(main_svc, 3 if quick else 7), "python": cold_starts(peer, 1 if quick else 3)}

    runs: list[dict] = []
    res["runs"] = runs

    # Every target runs at once (idle ones cost nothing) and each load point is measured on all of
    # them in turn, so that a comparison is between runs a few seconds apart on this shared machine.
    plan: list[tuple[Target, list[int], list[str]]] = []
    if "service" in phases:
        plan.append((main_svc, conc, big))
    if "alt" in phases:
        alt = service_target("service-1x2", args.service_bin, args.model, 1, 2, rundir, args.queue)
        plan.append((alt, [c for c in conc if c in (2, 8)] or conc[:1], []))
    for spec in args.service if "extra" in phases else []:
        label, binary, pool, threads = parse_service_spec(spec)
        t = service_target(label, binary, args.model, pool, threads, rundir, args.queue)
        if "cold" in phases:
            res.setdefault("cold", {})[label] = cold_starts(t, 3 if quick else 7)
        plan.append((t, conc, big))
    if "python" in phases:
        plan.append((peer, conc, big))
    res["targets"] = [{"label": t.label, "kind": t.kind, "pool": t.pool, "threads": t.threads, "command": " ".join(t.cmd)}
                      for t, _, _ in plan]
    started: list[Target] = []
    try:
        for t, _, _ in plan:
            t.start()
            started.append(t)
            log(f"started {t.label} (pool {t.pool} x {t.threads} threads)")
        if "service" in phases and "python" in phases:
            log("same job check")
            res["check"] = check_same_job(main_svc, peer, small, rundir)
        points = [("256", c) for c in conc] + [(b, 2) for b in big]
        for img, c in points:
            log(f"load point: {img} at c={c}")
            for t, cs, bs in plan:
                if (img == "256" and c in cs) or (img != "256" and img in bs):
                    first_big = img == "12MP"
                    runs.append(load_run(t, images[img], img, c, secs if img == "256" else big_secs,
                                         0 if first_big else warm, rundir))
            if img == "256" and c >= 2 and "raw" in phases and plan:
                # The limit measured right beside the saturated points: other engineers' load on this
                # machine changes from minute to minute, so a ratio takes its two sides seconds apart.
                rp = res.setdefault("raw_points", {}).setdefault(str(c), {})
                rp["2x1"] = raw_ort(args, 2, 1, secs, small)
                if c == 8:
                    rp["1x2"] = raw_ort(args, 1, 2, secs, small)
        for t, _, _ in plan:
            if t.kind == "service":
                res.setdefault("info", {})[t.label] = json.loads(http_get(t.port, "/info")[1])
    finally:
        for t in started:
            t.stop()

    if "raw" in phases:
        log("raw ONNX Runtime again (drift)")
        res["raw_end"] = {"1x2": raw_ort(args, 1, 2, raw_secs, small), "2x1": raw_ort(args, 2, 1, raw_secs, small)}

    res["finished"] = time.time()
    res["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    res["commands"] = COMMANDS
    (rundir / "results.json").write_text(json.dumps(res, indent=1, default=str))
    log(f"results: {rel(rundir / 'results.json')}")
    if not args.no_report:
        sys.path.insert(0, str(BENCH))
        import report  # noqa: PLC0415

        report.write(res, rundir, args.report)
        log(f"report: {rel(args.report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
