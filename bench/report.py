"""Writes bench/REPORT.md and its plots from a harness results.json.

`python bench/report.py bench/out/run-X/results.json` rewrites the report from a finished run.
The hand-written analysis (profile, fix, before/after discussion) lives in bench/ANALYSIS.md and
is included verbatim.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BENCH = Path(__file__).resolve().parent
STAGES = ["decode", "resize", "infer", "bin_decode", "upsample", "encode"]


def f(v, nd=1, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}{unit}"
    return f"{v}{unit}"


def runs_of(res, target=None, image=None, c=None):
    return [r for r in res.get("runs", []) if (target is None or r["target"] == target) and (image is None or r["image"] == image)
            and (c is None or r["c"] == c)]


def one(res, target, image, c):
    r = runs_of(res, target, image, c)
    return r[0] if r else None


def raw_all(res, key):
    """Every raw-ORT measurement of one split: start, beside each saturated point, end."""
    out = [res[k][key] for k in ("raw_start", "raw_end") if k in res and key in res[k]]
    out += [rp[key] for rp in (res.get("raw_points") or {}).values() if key in rp]
    return out


def raw_mean(res, key):
    """The limit for plots and summaries: the median of all raw-ORT measurements of the run (a
    few are taken while other engineers load the machine; the median ignores them)."""
    vals = [r["images_per_s"] for r in raw_all(res, key)]
    return statistics.median(vals) if vals else None


def raw_beside(res, c, key="2x1"):
    """The raw-ORT run measured right after load point (256, c), if any."""
    r = (res.get("raw_points") or {}).get(str(c), {}).get(key)
    return r


def saturated(res, target):
    """Best 256-px throughput at c >= 2 (the service at saturation)."""
    rs = [r for r in runs_of(res, target, "256") if r["c"] >= 2]
    return max(rs, key=lambda r: r["rps"]) if rs else None


def targets(res):
    if res.get("targets"):
        return [t["label"] for t in res["targets"]]
    seen = []
    for r in res.get("runs", []):
        if r["target"] not in seen:
            seen.append(r["target"])
    return seen


def verdict(v, target, higher=True):
    if v is None:
        return "-"
    ok = v >= target if higher else v <= target
    return "meets" if ok else "**misses**"


def plots(res, outdir: Path) -> list[tuple[str, str]]:
    made = []
    tg = targets(res)
    colors = {"service": "#1f77b4", "python": "#d62728", "service-1x2": "#17becf"}
    extra_cols = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22"]

    def col(t):
        if t not in colors:
            colors[t] = extra_cols[(len(colors) - 3) % len(extra_cols)]
        return colors[t]

    # Throughput vs concurrency, 256x256.
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for t in tg:
        rs = sorted(runs_of(res, t, "256"), key=lambda r: r["c"])
        if rs:
            ax.plot([r["c"] for r in rs], [r["rps"] for r in rs], "o-", label=t, color=col(t))
    for key, ls in (("2x1", "--"), ("1x2", ":")):
        v = raw_mean(res, key)
        if v:
            ax.axhline(v, ls=ls, color="k", lw=1, label=f"raw ORT {key[0]} session(s) x {key[2]} thread(s), median of the run")
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 8, 32], ["1", "2", "8", "32"])
    ax.set_xlabel("concurrency (oha -c)")
    ax.set_ylabel("images / s (200 only)")
    ax.set_title("256x256 JPEG -> PNG: throughput")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(outdir / "throughput_256.png", dpi=110)
    plt.close(fig)
    made.append(("throughput_256.png", "Throughput at 256x256 against concurrency; dashed: the raw-ORT limit"))

    # Latency vs concurrency.
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for t in tg:
        rs = sorted(runs_of(res, t, "256"), key=lambda r: r["c"])
        if rs:
            ax.plot([r["c"] for r in rs], [r["p50_ms"] for r in rs], "o-", color=col(t), label=f"{t} p50")
            ax.plot([r["c"] for r in rs], [r["p99_ms"] for r in rs], "s--", color=col(t), label=f"{t} p99", alpha=0.7)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks([1, 2, 8, 32], ["1", "2", "8", "32"])
    ax.set_xlabel("concurrency")
    ax.set_ylabel("latency (ms)")
    ax.set_title("256x256: latency p50 / p99")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(outdir / "latency_256.png", dpi=110)
    plt.close(fig)
    made.append(("latency_256.png", "Latency p50 and p99 at 256x256"))

    # Large photos.
    big = ["1MP", "4MP", "12MP"]
    tb = [t for t in tg if any(runs_of(res, t, b) for b in big)]
    if tb:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        w = 0.8 / len(tb)
        for i, t in enumerate(tb):
            xs = [j + i * w for j in range(len(big))]
            mp = [(one(res, t, b, 2) or {}).get("mp_per_s", 0) for b in big]
            p50 = [(one(res, t, b, 2) or {}).get("p50_ms") or 0 for b in big]
            axes[0].bar(xs, mp, w, label=t, color=col(t))
            axes[1].bar(xs, [v / 1000 for v in p50], w, label=t, color=col(t))
        for ax, yl in ((axes[0], "megapixels / s"), (axes[1], "p50 latency (s)")):
            ax.set_xticks([j + 0.4 - w / 2 for j in range(len(big))], big)
            ax.set_ylabel(yl)
            ax.grid(alpha=0.3, axis="y")
            ax.legend(fontsize=8)
        axes[1].set_yscale("log")
        fig.suptitle("Large photos, concurrency 2")
        fig.tight_layout()
        fig.savefig(outdir / "large.png", dpi=110)
        plt.close(fig)
        made.append(("large.png", "Large photos at concurrency 2: megapixels/s and p50 latency"))

    # Before/after (extra service builds measured in the same run).
    extra = [t for t in tg if t not in ("service", "python", "service-1x2")]
    if extra:
        pts = [(r["image"], r["c"]) for r in runs_of(res, "service")]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        w = 0.8 / (1 + len(extra))
        for i, t in enumerate(["service"] + extra):
            xs = [j + i * w for j in range(len(pts))]
            rel_rps = []
            cpu = []
            for img, c in pts:
                o, b = one(res, t, img, c), one(res, "service", img, c)
                rel_rps.append(o["rps"] / b["rps"] if o and b and b["rps"] else 0)
                cpu.append(1000 * o["cpu_s_per_image"] / (1000 * b["cpu_s_per_image"]) if o and b and o["cpu_s_per_image"] else 0)
            axes[0].bar(xs, rel_rps, w, label=t, color=col(t))
            axes[1].bar(xs, cpu, w, label=t, color=col(t))
        for ax, yl in ((axes[0], "throughput / service (before)"), (axes[1], "CPU per image / service (before)")):
            ax.set_xticks([j + w * len(extra) / 2 for j in range(len(pts))], [f"{i} c={c}" for i, c in pts], fontsize=8)
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set_ylabel(yl)
            ax.grid(alpha=0.3, axis="y")
            ax.legend(fontsize=8)
        fig.suptitle("Before / after, measured side by side in the same run")
        fig.tight_layout()
        fig.savefig(outdir / "before_after.png", dpi=110)
        plt.close(fig)
        made.append(("before_after.png", "Patched builds against the service as built from main: throughput and CPU per image"))

    # Stage split (service runs).
    st_runs = [r for r in res.get("runs", []) if r.get("stages") and r["target"] not in ("service-1x2",)
               and (r["image"] != "256" or r["c"] in (1, 8))]
    st_runs.sort(key=lambda r: (tg.index(r["target"]) if r["target"] in tg else 9, {"256": 0, "1MP": 1, "4MP": 2, "12MP": 3}[r["image"]], r["c"]))
    if st_runs:
        fig, ax = plt.subplots(figsize=(8, 0.6 * len(st_runs) + 1.5))
        labels = [f"{r['target']} {r['image']} c={r['c']}" for r in st_runs]
        left = [0.0] * len(st_runs)
        cmap = plt.get_cmap("tab10")
        for k, s in enumerate(STAGES):
            vals = []
            for r in st_runs:
                tot = sum((r["stages"].get(x) or {}).get("mean_ms") or 0 for x in STAGES)
                vals.append(100 * ((r["stages"].get(s) or {}).get("mean_ms") or 0) / tot if tot else 0)
            ax.barh(labels, vals, left=left, label=s, color=cmap(k))
            left = [a + b for a, b in zip(left, vals)]
        ax.set_xlabel("% of the pipeline's time per image (service histograms)")
        ax.set_xlim(0, 100)
        ax.invert_yaxis()
        ax.legend(fontsize=8, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.12))
        fig.tight_layout()
        fig.savefig(outdir / "stages.png", dpi=110)
        plt.close(fig)
        made.append(("stages.png", "Where a request's time goes, from the service's own stage histograms"))
    return made


def limit_row(L, res, sat, split, raw_fallback, label, beside_words, bold):
    """The headline row `label / raw ORT <split>`: against the raw-ORT run measured beside the
    saturated point when there is one, else against the mean of the raw-ORT runs."""
    if not sat:
        return
    rb = raw_beside(res, sat["c"], split)
    if rb:
        raw, words = rb["images_per_s"], beside_words
    elif raw_fallback:
        raw, words = raw_fallback, ""
    else:
        return
    v = sat["rps"] / raw
    shown = f"**{v:.2f}**" if bold else f"{v:.2f}"
    L.append(f"| {label.format(rps=sat['rps'], c=sat['c'])} / raw ORT {split} {words}({raw:.1f} img/s) | "
             f"{shown} | >= 0.9 | {verdict(v, 0.9)} |")


def write(res: dict, rundir: Path, report: Path) -> None:
    plot_dir = report.parent / "report"
    plot_dir.mkdir(exist_ok=True)
    made = plots(res, plot_dir)
    for name, _ in made:
        shutil.copy(plot_dir / name, rundir / name)
    m = res["machine"]
    L = []
    L.append("# Benchmarks: the service against raw ONNX Runtime and a Python peer\n")
    L.append(f"Generated by `{res.get('argv') or 'bench/run.sh'}` on {m['date']} at commit `{m['git']}`"
             f"{' (QUICK mode: short runs, noisier)' if res.get('quick') else ''}. "
             f"Model: `{res['model']}`; {res['seconds_per_run']:.0f} s per load run (1.5x for large photos), after a 1 s warm-up "
             "at the same concurrency. Raw results: `results.json` in the run folder under `bench/out/`.\n")
    L.append("## Machine\n")
    L.append(f"- {m['nproc']} CPUs: {m['cpu']} (SIMD: {m['simd'] or 'n/a'}); {m['mem_gib']} GiB memory; Linux {m['kernel']}")
    L.append(f"- {m['rustc']}; Python {m['python']}; {m['oha']}")
    L.append(f"- Load average at start {' '.join(m['loadavg_start'])}, at end {' '.join(m.get('loadavg_end', ['?']))}: "
             "**the machine is shared with other engineers' builds and training**, so absolute numbers move between runs; "
             "compare ratios within one run. The `other` column is the CPU used by everything else during each run.\n")

    # Headline.
    L.append("## Headline ratios\n")
    L.append("| ratio | value | target | |")
    L.append("|---|---|---|---|")
    svc_sat = saturated(res, "service")
    raw21, raw12 = raw_mean(res, "2x1"), raw_mean(res, "1x2")
    limit_row(L, res, svc_sat, "2x1", raw21, "service (2 sessions x 1 thread, best of c=2/8/32: {rps:.1f} img/s at c={c})",
              "measured right after it ", bold=True)
    raw_cpu = [r.get("cpu_s_per_image") for r in raw_all(res, "2x1")]
    raw_cpu = statistics.median(raw_cpu) if raw_cpu and all(raw_cpu) else None
    rb = raw_beside(res, svc_sat["c"]) if svc_sat else None
    cpu_here = rb["cpu_s_per_image"] if rb and rb.get("cpu_s_per_image") else raw_cpu
    if svc_sat and cpu_here and svc_sat.get("cpu_s_per_image"):
        v = cpu_here / svc_sat["cpu_s_per_image"]
        L.append(f"| CPU per image: raw ORT 2x1 ({1000 * cpu_here:.1f} ms) / service at that point "
                 f"({1000 * svc_sat['cpu_s_per_image']:.1f} ms); the ratio the throughput would have with all cores busy | "
                 f"{v:.2f} | (>= 0.9) | {verdict(v, 0.9)} |")
    if svc_sat and svc_sat["other_cores"] > 0.25:
        L.append(f"| (warning: other processes used {svc_sat['other_cores']:.2f} cores during that service run) | | | |")
    alt = saturated(res, "service-1x2")
    limit_row(L, res, alt, "1x2", raw12, "service (1 session x 2 threads, {rps:.1f} img/s at c={c})", "beside it ", bold=False)
    py_sat = saturated(res, "python")
    if svc_sat and py_sat:
        v = svc_sat["rps"] / py_sat["rps"]
        L.append(f"| service / Python peer throughput, 256x256 at saturation ({py_sat['rps']:.1f} img/s at c={py_sat['c']}) | "
                 f"**{v:.2f}** | >= 3 | {verdict(v, 3)} |")
    for b in ("1MP", "4MP", "12MP"):
        s, p = one(res, "service", b, 2), one(res, "python", b, 2)
        if s and p and p["rps"]:
            v = s["rps"] / p["rps"]
            L.append(f"| service / Python throughput, {b} at c=2 | {v:.2f} | >= 3 | {verdict(v, 3)} |")
    s8, p8 = one(res, "service", "256", 8), one(res, "python", "256", 8)
    if s8 and p8 and s8["p99_ms"]:
        v = p8["p99_ms"] / s8["p99_ms"]
        L.append(f"| Python p99 / service p99 at c=8 ({p8['p99_ms']:.0f} ms / {s8['p99_ms']:.0f} ms) | **{v:.2f}** | >= 2 | {verdict(v, 2)} |")
    cold = res.get("cold", {})
    if "service" in cold:
        c = cold["service"]
        rep = c.get("startup_s_reported") or []
        L.append(f"| service cold start, exec -> /readyz 200 (median of {len(c['runs_s'])}; min {c['min_s'] * 1000:.0f}, "
                 f"max {c['max_s'] * 1000:.0f} ms; `/info` startup_s median {statistics.median(rep) * 1000:.0f} ms) | "
                 f"**{c['median_s'] * 1000:.0f} ms** | < 1 s | {verdict(c['median_s'], 1.0, higher=False)} |" if rep else
                 f"| service cold start | {c['median_s'] * 1000:.0f} ms | < 1 s | {verdict(c['median_s'], 1.0, higher=False)} |")
    if "python" in cold:
        c = cold["python"]
        L.append(f"| Python peer cold start, exec -> /readyz 200 (median of {len(c['runs_s'])}) | {c['median_s'] * 1000:.0f} ms | | |")
    for k, c in cold.items():
        if k not in ("service", "python"):
            L.append(f"| {k} cold start (median of {len(c['runs_s'])}) | {c['median_s'] * 1000:.0f} ms | < 1 s | "
                     f"{verdict(c['median_s'], 1.0, higher=False)} |")
    L.append("")
    if "check" in res:
        ch = res["check"]
        L.append(f"Same-job check (one 256x256 image through both): status {ch['status']}, sizes {ch['size_service']} / "
                 f"{ch['size_python']}, mean |RGB difference| {f(ch.get('mean_abs_diff'), 2)} codes, 99th percentile "
                 f"{f(ch.get('p99_abs_diff'), 0)}, max {f(ch.get('max_abs_diff'))}; {100 * (ch.get('identical_fraction') or 0):.1f}% of "
                 "pixels identical (the service maps out-of-gamut colours by chroma instead of clipping, and the two resizers round "
                 "differently).\n")

    # Raw.
    L.append("## The limit: raw ONNX Runtime `Session::run`\n")
    L.append("`bench/ort-raw`: the service's session settings (graph optimisation all, intra-op threads as given, one inter-op "
             "thread, no spinning), the input the service feeds for a 256x256 photo, nothing but `Session::run` in a loop, one OS "
             "thread per session.\n")
    L.append("| sessions x threads | when | input | images/s | p50 ms | p99 ms | its CPU (cores) | CPU ms/img | machine cores busy |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    whens = [("raw_start", "start")] + [(f"c{c}", f"beside c={c}") for c in (res.get("raw_points") or {})] + [("raw_end", "end")]
    for when, label in whens:
        src = res.get(when) if when.startswith("raw_") else res["raw_points"][when[1:]]
        for key, r in (src or {}).items():
            L.append(f"| {key} | {label} | {r['input_hw'][0]}x{r['input_hw'][1]} -> {r['output_shape']} | "
                     f"{r['images_per_s']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {f(r.get('cpu_cores'), 2)} | "
                     f"{f(1000 * r['cpu_s_per_image'] if r.get('cpu_s_per_image') else None, 2)} | {r['machine_cores']:.2f} |")
    L.append("")

    # Load tables.
    L.append("## Load (oha)\n")
    L.append("img/s counts 200 answers only. CPU: the server process's CPU time over the run (cores); CPU ms/img: its CPU per "
             "image (the measure that other engineers' load on this machine disturbs least); peak RSS: VmHWM after a reset at "
             "the start of the run; oha: the load generator's own CPU; other: everything else on the machine; idle: cores "
             "left idle.\n")
    L.append("| target | image | c | img/s | MP/s | p50 ms | p90 ms | p99 ms | ok | errors | CPU cores | CPU ms/img | peak RSS MiB | oha cores | other cores | idle cores |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    order = {t: i for i, t in enumerate(targets(res))}
    img_order = {"256": 0, "1MP": 1, "4MP": 2, "12MP": 3}
    for r in sorted(res.get("runs", []), key=lambda r: (order[r["target"]], img_order.get(r["image"], 9), r["c"])):
        L.append(f"| {r['target']} | {r['image']} | {r['c']} | {r['rps']:.2f} | {r['mp_per_s']:.2f} | {f(r['p50_ms'])} | "
                 f"{f(r['p90_ms'])} | {f(r['p99_ms'])} | {r['ok']} | {r['errors']}{' ' + json.dumps(r['status']) if r['errors'] else ''} | "
                 f"{r['cpu_cores']:.2f} | {f(1000 * r['cpu_s_per_image'] if r['cpu_s_per_image'] else None, 1)} | {r['peak_rss_mib']:.0f} | "
                 f"{r['loadgen_cpu_cores']:.2f} | {r['other_cores']:.2f} | {f(r.get('idle_cores'), 2)} |")
    L.append("")

    if res.get("raw_points"):
        L.append("Ratios to the limit at each saturated point (raw ORT 2x1 measured right after the point):\n")
        tg = [t for t in targets(res) if t != "python"]
        L.append("| c | raw 2x1 img/s | " + " | ".join(f"{t} / raw" for t in tg) + " | " + " | ".join(f"{t} CPU: raw / it" for t in tg) + " |")
        L.append("|---|---|" + "---|" * (2 * len(tg)))
        for c, rp in res["raw_points"].items():
            rb = rp.get("2x1")
            if not rb:
                continue
            cells = []
            cpus = []
            for t in tg:
                o = one(res, t, "256", int(c))
                cells.append(f"{o['rps'] / rb['images_per_s']:.2f}" if o else "-")
                cpus.append(f"{rb['cpu_s_per_image'] / o['cpu_s_per_image']:.2f}" if o and o.get("cpu_s_per_image") and rb.get("cpu_s_per_image") else "-")
            L.append(f"| {c} | {rb['images_per_s']:.1f} | " + " | ".join(cells) + " | " + " | ".join(cpus) + " |")
        L.append("")

    # Stages.
    st_runs = [r for r in res.get("runs", []) if r.get("stages")]
    if st_runs:
        L.append("## Time split per stage (the service's own histograms)\n")
        L.append("Mean ms per image of `colorizer_stage_seconds{stage}` over each run (difference of `_sum`/`_count` scraped "
                 "before and after), and `colorizer_queue_wait_seconds`. Stages run on a shared 2-core machine, so under "
                 "concurrency each stage's wall time includes waiting for a core.\n")
        L.append("| target | image | c | " + " | ".join(STAGES) + " | sum | infer % | queue wait |")
        L.append("|---|---|---|" + "---|" * (len(STAGES) + 3))
        for r in st_runs:
            vals = [(r["stages"].get(s) or {}).get("mean_ms") for s in STAGES]
            tot = sum(v or 0 for v in vals)
            inf = (r["stages"].get("infer") or {}).get("mean_ms") or 0
            q = (r["stages"].get("queue_wait") or {}).get("mean_ms")
            L.append(f"| {r['target']} | {r['image']} | {r['c']} | " + " | ".join(f(v, 2) for v in vals) +
                     f" | {tot:.2f} | {100 * inf / tot if tot else 0:.0f}% | {f(q, 2)} |")
        L.append("")

    # Extra services (before/after).
    extra = [t for t in targets(res) if t not in ("service", "python", "service-1x2")]
    if extra:
        L.append("## Before / after (same run)\n")
        L.append("| image | c | " + " | ".join(f"{t} img/s | {t} p99 ms" for t in ["service"] + extra) + " | " +
                 " | ".join(f"{t} / service" for t in extra) + " |")
        L.append("|---|---|" + "---|---|" * (1 + len(extra)) + "---|" * len(extra))
        for r in runs_of(res, "service"):
            cells, ratios = [], []
            for t in ["service"] + extra:
                o = one(res, t, r["image"], r["c"])
                cells.append(f"{o['rps']:.2f} | {f(o['p99_ms'], 0)}" if o else "- | -")
                if t != "service":
                    ratios.append(f"{o['rps'] / r['rps']:.2f}" if o and r["rps"] else "-")
            L.append(f"| {r['image']} | {r['c']} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        L.append("")
        L.append("| image | c | " + " | ".join(f"{t} CPU ms/img" for t in ["service"] + extra) + " | " +
                 " | ".join(f"{t} CPU / service CPU" for t in extra) + " |")
        L.append("|---|---|" + "---|" * (1 + 2 * len(extra)))
        for r in runs_of(res, "service"):
            cells, ratios = [], []
            for t in ["service"] + extra:
                o = one(res, t, r["image"], r["c"])
                cells.append(f(1000 * o["cpu_s_per_image"], 1) if o and o["cpu_s_per_image"] else "-")
                if t != "service":
                    ratios.append(f"{o['cpu_s_per_image'] / r['cpu_s_per_image']:.2f}" if o and o["cpu_s_per_image"] and r["cpu_s_per_image"] else "-")
            L.append(f"| {r['image']} | {r['c']} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        base = saturated(res, "service")
        for t in extra:
            sat = saturated(res, t)
            rb_t = raw_beside(res, sat["c"]) if sat else None
            rb_b = raw_beside(res, base["c"]) if base else None
            r_t = rb_t["images_per_s"] if rb_t else raw21
            r_b = rb_b["images_per_s"] if rb_b else raw21
            if sat and r_t and r_b:
                L.append(f"\n{t}: best saturated 256-px throughput {sat['rps']:.1f} img/s (c={sat['c']}) = **{sat['rps'] / r_t:.2f} x raw ORT 2x1** "
                         f"(the service without it: {base['rps']:.1f} img/s at c={base['c']} = {base['rps'] / r_b:.2f} x)" + (
                             f"; CPU per image {1000 * sat['cpu_s_per_image']:.1f} ms: raw ORT's "
                             f"{1000 * (rb_t or {}).get('cpu_s_per_image', raw_cpu):.1f} ms / it = "
                             f"{(rb_t or {}).get('cpu_s_per_image', raw_cpu) / sat['cpu_s_per_image']:.2f}"
                             if raw_cpu and sat.get("cpu_s_per_image") else "") + ".")
        L.append("")

    L.append("## Plots\n")
    for name, cap in made:
        L.append(f"![{cap}](report/{name})\n")
        L.append(f"*{cap}.*\n")

    analysis = BENCH / "ANALYSIS.md"
    if analysis.exists():
        L.append(analysis.read_text().rstrip() + "\n")

    L.append("## Exact commands\n")
    L.append("Everything: `bench/run.sh` (add `--quick` for short runs). It builds `cargo build --release`, "
             "`bench/ort-raw` (its own workspace, target dir `bench/out/ort-raw-target`), installs `oha` into "
             "`bench/out/tools` with `cargo install oha --version 1.16.0 --locked --no-default-features --features native-tls` (its rustls default needs a C build of aws-lc; without any TLS feature 1.16.0 does not compile), makes the Python venv "
             "`bench/out/peer-venv` from `bench/python_peer/requirements.txt`, then runs `bench/harness.py`. Commands the "
             "harness ran (PORT is a free port picked per server):\n")
    L.append("```")
    L.extend(res.get("commands", []))
    L.append("```\n")
    report.write_text("\n".join(L))


if __name__ == "__main__":
    src = Path(sys.argv[1])
    res = json.loads(src.read_text())
    write(res, src.parent, Path(sys.argv[2]) if len(sys.argv) > 2 else BENCH / "REPORT.md")
