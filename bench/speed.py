"""Issue 12 in one run: large photos against the single-threaded reference (OpenCV + raw ONNX
Runtime, bench/reference/reference.py), memory per request, the CLI's batch throughput against
raw ORT, and 256 px at c = 8 against raw ORT; the service before and after, interleaved.

Every comparison is measured in rounds, each round running every contender on the same input a
few seconds apart, so that the load of other processes on this shared machine falls on all of
them alike; ratios are taken per round and their median reported.

Run by bench/speed.sh (which builds and installs what it needs); writes OUT/results.json and
OUT/speed.md (the tables that bench/REPORT.md takes).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "reference"))
from procfs import machine_busy_ticks, proc_cpu_ticks, proc_status_kib  # noqa: E402
from reference import Reference  # noqa: E402

STAGES = ["decode", "resize", "infer", "bin_decode", "upsample", "encode"]
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------------
# Photos


def mosaic(files: list[Path], w: int, h: int, tile: int, seed: int) -> np.ndarray:
    """Real photos side by side (each resized to tile x tile): the detail of a real photo at any size."""
    img = np.zeros((h, w), np.uint8)
    k = seed
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            t = cv2.imread(str(files[k % len(files)]), cv2.IMREAD_GRAYSCALE)
            t = cv2.resize(t, (tile, tile), interpolation=cv2.INTER_CUBIC)
            img[y : y + tile, x : x + tile] = t[: h - y, : w - x]
            k += 7
    return img


def make_photos(out: Path, data: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(data.rglob("*.jpg"))
    if not files:
        raise SystemExit(f"no photos under {data}")
    q90 = [cv2.IMWRITE_JPEG_QUALITY, 90]
    photos = {}
    for name, (w, h, tile) in {"256": (256, 256, 256), "12MP": (4000, 3000, 250), "48MP": (8000, 6000, 500)}.items():
        p = out / f"gray_{name}.jpg"
        if not p.exists():
            cv2.imwrite(str(p), mosaic(files, w, h, tile, 0), q90)
        photos[name] = {"path": p, "w": w, "h": h, "bytes": p.stat().st_size}
    batch = out / "batch_2MP"
    if not batch.exists() or len(list(batch.glob("*.jpg"))) < 40:
        batch.mkdir(exist_ok=True)
        for i in range(40):
            cv2.imwrite(str(batch / f"p{i:02}.jpg"), mosaic(files, 1632, 1224, 204, 11 * i + 1), q90)
    photos["batch"] = {"path": batch, "w": 1632, "h": 1224, "n": 40}
    return photos


# ---------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COMMANDS: list[str] = []


def record(cmd: list[str]) -> None:
    line = " ".join(str(c) for c in cmd)
    if line not in COMMANDS:
        COMMANDS.append(line)


class Server:
    def __init__(self, label: str, binary: str, model: str, ort_lib: str, logdir: Path):
        self.label, self.port = label, free_port()
        self.cmd = [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--pool-size", "2", "--threads", "1",
                    "--queue", "64", "--no-embedded-models", "--model", f"bench={model}", "--memory-budget", "6GiB"]
        record([binary, "serve", "--host", "127.0.0.1", "--port", "PORT"] + self.cmd[6:])
        env = dict(os.environ, ORT_DYLIB_PATH=ort_lib)
        self.log = open(logdir / f"{label}.log", "ab")
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.time()
        while time.time() - t0 < 60:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"{label} exited; see {logdir / (label + '.log')}")
            time.sleep(0.05)
        raise SystemExit(f"{label} not ready")

    def post(self, body: bytes, fmt: str) -> tuple[float, dict, int]:
        """One request; returns wall ms, Server-Timing stages (ms) and the answer's size."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        t0 = time.perf_counter()
        c.request("POST", f"/colorize?format={fmt}&quality=90", body=body, headers={"Content-Type": "image/jpeg"})
        r = c.getresponse()
        data = r.read()
        wall = 1000 * (time.perf_counter() - t0)
        if r.status != 200:
            raise SystemExit(f"{self.label}: {r.status} {data[:300]!r}")
        stages = {m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+);dur=([\d.]+)", r.getheader("server-timing") or "")}
        c.close()
        return wall, stages, len(data)

    def peak_of(self, body: bytes, fmt: str) -> tuple[float, int]:
        """One request with the peak RSS reset first: (wall ms, peak bytes above the RSS before)."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        before = proc_status_kib(self.proc.pid, "VmRSS")
        wall, _, _ = self.post(body, fmt)
        return wall, (proc_status_kib(self.proc.pid, "VmHWM") - before) * 1024

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def ort_raw(binary: str, model: str, lib: str, image: str, seconds: float) -> float:
    cmd = [binary, "--model", model, "--lib", lib, "--sessions", "2", "--threads", "1", "--seconds", str(seconds), "--image", image]
    record(cmd)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r'"images_per_s"\s*:\s*([\d.]+)', out) or re.search(r"([\d.]+)\s*img/s", out)
    if not m:
        raise SystemExit(f"ort-raw said: {out}")
    return float(m.group(1))


def oha(binary: str, port: int, image: Path, c: int, seconds: float) -> float:
    cmd = [binary, "--no-tui", "-z", f"{seconds}s", "-w", "-c", str(c), "-m", "POST", "-D", str(image), "-T", "image/jpeg",
           "--output-format", "json", "--worker-threads", "1", f"http://127.0.0.1:{port}/colorize"]
    record([*cmd[:-1], "http://127.0.0.1:PORT/colorize"])
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    ok = out.get("statusCodeDistribution", {}).get("200", 0)
    return ok / seconds


def accounted(measure, seconds: float, pid: int | None = None) -> tuple[float, float, float | None]:
    """Runs `measure` (returns images a second over `seconds`), with what it cost: (images a
    second, share of the machine idle meanwhile, CPU ms of process `pid` per image)."""
    b0, a0 = machine_busy_ticks()
    t0 = proc_cpu_ticks(pid) if pid else 0
    rate = measure()
    images = rate * seconds
    b1, a1 = machine_busy_ticks()
    cpu = (proc_cpu_ticks(pid) - t0) * 1000 / os.sysconf("SC_CLK_TCK") / images if pid and images else None
    return rate, 1 - (b1 - b0) / max(a1 - a0, 1), cpu


def med(v: list[float]) -> float:
    return statistics.median(v) if v else float("nan")


# ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="the service before (binary)")
    ap.add_argument("--after", required=True, help="the service after (binary)")
    ap.add_argument("--model", default="models/colorizer.onnx")
    ap.add_argument("--before-model", help="the model the service before runs (default: --model); raw ORT then runs "
                    "both, and before / raw is against the before model's raw ORT")
    ap.add_argument("--ort-lib", default=".ort/libonnxruntime.so.1.31.1")
    ap.add_argument("--ort-raw", default="bench/out/ort-raw-target/release/ort-raw")
    ap.add_argument("--oha", default="bench/out/tools/bin/oha")
    ap.add_argument("--data", required=True,
                    help="a folder of colour photos (recursive); the large test photos are mosaics of them")
    ap.add_argument("--out", default="bench/out/speed")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0, help="each c = 8 and raw ORT point")
    ap.add_argument("--only", default="large,memory,batch,c8")
    args = ap.parse_args()
    only = set(args.only.split(","))
    models = {"before": args.before_model or args.model, "after": args.model}
    two_models = models["before"] != models["after"]
    # raw ORT on each model measured: "raw" on the after model, "raw_before" on the before one
    raw_models = {"raw": models["after"]} | ({"raw_before": models["before"]} if two_models else {})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = make_photos(REPO / "bench/out/images12", Path(args.data))
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": args.model,
                 "before_model": models["before"], "rounds": args.rounds,
                 "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
                 "load_before": os.getloadavg()}
    servers = {lab: Server(lab, b, models[lab], args.ort_lib, out) for lab, b in (("before", args.before), ("after", args.after))}
    try:
        if "large" in only:
            ref = Reference(args.model)
            large: dict = {}
            # Warm-up (not counted): first touches of big buffers, OpenCV's and ORT's lazy set-up.
            for size in ("12MP", "48MP"):
                body = photos[size]["path"].read_bytes()
                for fmt in ("jpeg", "png"):
                    ref.run(body, fmt)
                    for s in servers.values():
                        s.post(body, fmt)
            for r in range(args.rounds):
                for size in ("12MP", "48MP"):
                    body = photos[size]["path"].read_bytes()
                    for fmt in ("jpeg", "png"):
                        e = large.setdefault(f"{size} {fmt}", {"ref": [], "before": [], "after": [], "ratio_before": [], "ratio_after": []})
                        _, t = ref.run(body, fmt)
                        e["ref"].append(t)
                        for lab, s in servers.items():
                            wall, stages, _ = s.post(body, fmt)
                            stages["total"] = wall
                            e[lab].append(stages)
                            e[f"ratio_{lab}"].append(wall / t["total"])
                        print(f"round {r} {size} {fmt}: ref {t['total']:.0f} ms, before {e['before'][-1]['total']:.0f}, "
                              f"after {e['after'][-1]['total']:.0f}", flush=True)
            res["large"] = large
        if "memory" in only:
            # Peak memory of one request on a fresh server (what a request costs above the RSS at
            # rest, not hidden by memory an earlier request left in the allocator's free lists).
            mem: dict = {}
            for size in ("12MP", "48MP"):
                body = photos[size]["path"].read_bytes()
                for fmt in ("jpeg", "png"):
                    for lab in ("before", "after"):
                        fresh = Server(f"{lab}-fresh", getattr(args, lab), models[lab], args.ort_lib, out)
                        try:
                            mem.setdefault(f"{size} {fmt}", {})[lab] = fresh.peak_of(body, fmt)[1]
                        finally:
                            fresh.stop()
            res["memory"] = mem
        if "batch" in only:
            batch = photos["batch"]
            rows: dict = {lab: [] for lab in ["before", "after", *raw_models]}
            for r in range(args.rounds):
                for lab in ("before", "after"):
                    dst = out / f"batch-{lab}"
                    shutil.rmtree(dst, ignore_errors=True)
                    cmd = [getattr(args, lab), "colorize", str(batch["path"]), "-o", str(dst), "--format", "jpeg", "--model", models[lab], "--quiet"]
                    record(cmd)
                    t0 = time.perf_counter()
                    subprocess.run(cmd, check=True, env=dict(os.environ, ORT_DYLIB_PATH=args.ort_lib), capture_output=True)
                    rows[lab].append(batch["n"] / (time.perf_counter() - t0))
                for lab, model in raw_models.items():
                    rows[lab].append(ort_raw(args.ort_raw, model, args.ort_lib, f"{batch['w']}x{batch['h']}", args.seconds))
                print(f"round {r} batch: before {rows['before'][-1]:.1f} img/s, after {rows['after'][-1]:.1f}, raw {rows['raw'][-1]:.1f}", flush=True)
            res["batch"] = rows
        if "c8" in only:
            # Alternating order (before, after, raw, then raw, after, before): a machine whose
            # speed drifts within a round favours neither side. Beside each rate: the share of the
            # machine idle while it ran, and the service's CPU per image.
            labs = ["before", "after", *raw_models]
            rows = {lab: [] for lab in labs}
            idle = {lab: [] for lab in labs}
            cpu = {"before": [], "after": []}
            for r in range(args.rounds):
                order = labs if r % 2 == 0 else labs[::-1]
                for lab in order:
                    if lab in raw_models:
                        model = raw_models[lab]
                        rate, free, _ = accounted(lambda: ort_raw(args.ort_raw, model, args.ort_lib, "256x256", args.seconds), args.seconds)
                    else:
                        s = servers[lab]
                        rate, free, ms = accounted(lambda: oha(args.oha, s.port, photos["256"]["path"], 8, args.seconds), args.seconds, s.proc.pid)
                        cpu[lab].append(ms)
                    rows[lab].append(rate)
                    idle[lab].append(free)
                print(f"round {r} 256 c=8: before {rows['before'][-1]:.1f} img/s, after {rows['after'][-1]:.1f}, raw {rows['raw'][-1]:.1f}"
                      + (f", raw (before model) {rows['raw_before'][-1]:.1f}" if two_models else "") + "; "
                      f"idle {100 * idle['before'][-1]:.1f} / {100 * idle['after'][-1]:.1f} / {100 * idle['raw'][-1]:.1f}%", flush=True)
            res["c8"] = rows
            res["c8_idle"] = idle
            res["c8_cpu_ms"] = cpu
    finally:
        for s in servers.values():
            s.stop()
    res["load_after"] = os.getloadavg()
    res["commands"] = COMMANDS
    res["photos"] = {k: {kk: str(vv) for kk, vv in v.items()} for k, v in photos.items()}
    (out / "results.json").write_text(json.dumps(res, indent=1))
    (out / "speed.md").write_text(markdown(res))
    print(markdown(res))


def markdown(res: dict) -> str:
    L = []
    la, lb = res["load_before"], res["load_after"]
    models = f"model `{res['model']}`" + (f" (before: `{res['before_model']}`)" if res.get("before_model", res["model"]) != res["model"] else "")
    L.append(f"Run {res['date']}, commit {res['git']}, {models}, {res['rounds']} rounds; load average "
             f"{la[0]:.1f} before and {lb[0]:.1f} after the run on 2 cores (the run itself keeps one to two cores busy; more "
             "than that means other work shared the machine), so absolute times move between runs; the ratios are per "
             "round (same input, seconds apart), median over rounds.")
    L.append("")
    if "large" in res:
        L.append("### Large photos, one request at a time: service / single-threaded reference (OpenCV + raw ORT)")
        L.append("")
        L.append("| photo, output | reference ms | before ms | after ms | before / reference | after / reference | done when |")
        L.append("|---|---|---|---|---|---|---|")
        goal = {"12MP jpeg": "<= 0.6", "12MP png": "<= 0.2"}
        for k, e in res["large"].items():
            L.append(f"| {k} | {med([t['total'] for t in e['ref']]):.0f} | {med([t['total'] for t in e['before']]):.0f} | "
                     f"{med([t['total'] for t in e['after']]):.0f} | {med(e['ratio_before']):.2f} | **{med(e['ratio_after']):.2f}** | {goal.get(k, '')} |")
        L.append("")
        L.append("Per stage, median ms (service: its `Server-Timing`; `total` is the client's wall time of the request, upload and answer included):")
        L.append("")
        L.append("| photo, output | who | " + " | ".join(STAGES) + " | total |")
        L.append("|---|---|" + "---|" * (len(STAGES) + 1))
        for k, e in res["large"].items():
            for who in ("ref", "before", "after"):
                rows = e[who]
                cells = [f"{med([t.get(s, 0.0) for t in rows]):.0f}" for s in STAGES + ["total"]]
                L.append(f"| {k} | {'reference' if who == 'ref' else who} | " + " | ".join(cells) + " |")
        L.append("")
    if "memory" in res:
        L.append("### Peak memory of one request on a fresh server (VmHWM after it minus the RSS at rest before it), per pixel of the photo")
        L.append("")
        L.append("| photo, output | before bytes/pixel | after bytes/pixel | before MiB | after MiB |")
        L.append("|---|---|---|---|---|")
        for k, e in res["memory"].items():
            px = 12e6 if k.startswith("12") else 48e6
            b, a = e["before"], e["after"]
            L.append(f"| {k} | {b / px:.1f} | **{a / px:.1f}** | {b / 2**20:.0f} | {a / 2**20:.0f} |")
        L.append("")
    def against_raw(key, title, row, extra_head="", extra_cell=""):
        r = res[key]
        L.append(title)
        L.append("")
        # with two models, "before / raw" is against raw ORT on the before model
        raw_b = r.get("raw_before", r["raw"])
        two = "raw_before" in r
        L.append("| | before img/s | after img/s | raw ORT img/s |" + (" raw ORT (before model) img/s |" if two else "")
                 + " before / raw | after / raw |" + extra_head)
        L.append("|---|---|---|---|" + ("---|" if two else "") + "---|---|" + ("---|" if extra_head else ""))
        rb = med([b / x for b, x in zip(r["before"], raw_b)])
        ra = med([a / x for a, x in zip(r["after"], r["raw"])])
        L.append(f"| {row} | {med(r['before']):.1f} | {med(r['after']):.1f} | {med(r['raw']):.1f} |"
                 + (f" {med(raw_b):.1f} |" if two else "") + f" {rb:.2f} | **{ra:.2f}** |" + extra_cell)
        L.append("")
    if "batch" in res:
        against_raw("batch", "### CLI batch: 40 photos of 2 MP (1632x1224), JPEG out, all cores, against raw ORT 2 sessions x 1 thread at the same model input", "2 MP batch")
    if "c8" in res:
        against_raw("c8", "### 256x256 JPEG -> PNG at c = 8 (oha) against raw ORT 2 sessions x 1 thread", "256 px, c = 8",
                    " done when |", " >= 0.9 |")
        if "c8_idle" in res:
            idle, cpu = res["c8_idle"], res["c8_cpu_ms"]
            L.append("While each ran (median over rounds): the machine idle before / after / raw ORT "
                     f"{100 * med(idle['before']):.1f} / {100 * med(idle['after']):.1f} / {100 * med(idle['raw']):.1f}%"
                     + (f" (raw ORT on the before model {100 * med(idle['raw_before']):.1f}%)" if "raw_before" in idle else "") + "; "
                     f"the service's CPU per image before / after {med(cpu['before']):.2f} / {med(cpu['after']):.2f} ms.")
            L.append("")
    L.append("Commands (PORT: a free port per server):")
    L.append("")
    L.append("```")
    L.extend(res["commands"])
    L.append("```")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
