#!/usr/bin/env python3
"""Soak test: constant load on loopback for a fixed time, sampling the server's RSS.

Starts the release binary on 127.0.0.1, sends colorize requests from CONCURRENCY threads in a
bounded loop that stops by itself after DURATION seconds, samples VmRSS every INTERVAL seconds,
then writes docs/reliability/SOAK.md and soak_rss.png (the RSS curve).

    training/.venv/bin/python scripts/soak.py [--duration 600] [--concurrency 4] [--interval 10]

Only loopback traffic. Needs matplotlib for the plot (the training venv has it).
"""
import argparse
import http.client
import io
import json
import os
import socket
import struct
import subprocess
import threading
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gray_png(w, h, seed):
    rows = []
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            v = (x * 255 // w + y * 128 // h + seed * 37) % 256 if y < h * 3 // 5 else (40 + (x * 7 + y * 13 + seed) % 40)
            row.append(v)
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/colorizer"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/reliability"))
    ap.add_argument("--extra", default="", help="extra serve flags")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    port = free_port()
    env = dict(os.environ, ORT_DYLIB_PATH=os.path.join(ROOT, ".ort/libonnxruntime.so.1.31.1"), RUST_LOG="warn")
    cmd = [a.binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--pool-size", "2", "--queue", "16"] + a.extra.split()
    srv = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() - t0 > 30:
                raise SystemExit("server did not become ready")
            time.sleep(0.05)
        info = json.loads(http_get(port, "/info"))
        # A mix of sizes: mostly small photos, some large ones.
        bodies = [gray_png(256, 256, i) for i in range(4)] + [gray_png(640, 480, 9), gray_png(1600, 1200, 11)]
        stop = time.time() + a.duration
        counts = {"ok": 0, "other": 0, "errors": 0}
        lock = threading.Lock()

        def worker(i):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            n = i
            while time.time() < stop:
                body = bodies[n % len(bodies)]
                n += 1
                try:
                    conn.request("POST", "/colorize", body=body, headers={"Content-Type": "image/png"})
                    r = conn.getresponse()
                    r.read()
                    with lock:
                        counts["ok" if r.status == 200 else "other"] += 1
                except (OSError, http.client.HTTPException):
                    with lock:
                        counts["errors"] += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.concurrency)]
        start = time.time()
        for t in threads:
            t.start()
        samples = [(0.0, rss_mib(srv.pid), 0)]
        while time.time() < stop:
            time.sleep(min(a.interval, max(0.0, stop - time.time())))
            with lock:
                done = counts["ok"]
            samples.append((time.time() - start, rss_mib(srv.pid), done))
            print(f"t={samples[-1][0]:6.0f}s rss={samples[-1][1]:7.1f} MiB requests ok={done}", flush=True)
        for t in threads:
            t.join(timeout=120)
        elapsed = time.time() - start
    finally:
        srv.terminate()
        srv.wait(timeout=60)
    write_report(a, samples, counts, elapsed, info, cmd)


def http_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    return c.getresponse().read()


def write_report(a, samples, counts, elapsed, info, cmd):
    rss = [s[1] for s in samples]
    # Flatness: the RSS of the second half against the first sample after warm-up (t >= 60 s).
    warm = [s for s in samples if s[0] >= min(60, a.duration / 4)]
    half = [s for s in samples if s[0] >= a.duration / 2]
    first, last = warm[0][1], warm[-1][1]
    growth = last - first
    slope = 0.0
    if len(half) >= 2:
        xs = [s[0] for s in half]
        ys = [s[1] for s in half]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(1e-9, sum((x - mx) ** 2 for x in xs)) * 60
    png = os.path.join(a.out, "soak_rss.png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3.6))
        ax.plot([s[0] / 60 for s in samples], rss, marker="o", ms=3)
        ax.set_xlabel("minutes under load")
        ax.set_ylabel("server RSS (MiB)")
        ax.set_ylim(0, max(rss) * 1.25)
        ax.set_title(f"colorizer soak: {a.concurrency} clients, {counts['ok']} requests")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(png, dpi=110)
    except ImportError:
        png = None
    models = ", ".join(f"{m['name']} ({m['sha256'][:12]})" for m in info["models"])
    lines = [
        "# Soak test",
        "",
        f"Constant load on loopback for {elapsed / 60:.1f} minutes: {a.concurrency} client threads, each sending",
        "one request after another (mix: four 256x256, one 640x480, one 1600x1200 gray PNG), while the",
        f"server's RSS was sampled every {a.interval:.0f} s from /proc. Models: {models}.",
        "",
        "Reproduce: `cargo build --release && training/.venv/bin/python scripts/soak.py --duration "
        f"{a.duration:.0f} --concurrency {a.concurrency}`",
        "",
        f"Server command: `{' '.join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)}`",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| requests answered 200 | {counts['ok']} ({counts['ok'] / elapsed:.1f}/s) |",
        f"| other statuses | {counts['other']} |",
        f"| client errors | {counts['errors']} |",
        f"| RSS at start (before load) | {rss[0]:.1f} MiB |",
        f"| RSS after warm-up (t = {warm[0][0]:.0f} s) | {first:.1f} MiB |",
        f"| RSS at the end | {last:.1f} MiB |",
        f"| peak RSS | {max(rss):.1f} MiB |",
        f"| growth after warm-up | {growth:+.1f} MiB |",
        f"| slope over the second half | {slope:+.2f} MiB/min |",
        "",
    ]
    if png:
        lines += ["![RSS over time](soak_rss.png)", ""]
    lines += ["Samples (seconds, RSS MiB, requests done):", "", "```"] + [f"{s[0]:7.1f} {s[1]:8.1f} {s[2]:7d}" for s in samples] + ["```", ""]
    with open(os.path.join(a.out, "SOAK.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines[:22]))


if __name__ == "__main__":
    main()
