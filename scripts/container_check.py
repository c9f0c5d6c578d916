#!/usr/bin/env python3
"""Helpers of scripts/container-test.sh (standard library, plus PyYAML for `prom-config` and
`promql`).

  container_check.py make-png OUT WIDTH HEIGHT        a gray test photo (smooth shapes + grain)
  container_check.py check-png FILE [--width W --height H] [--min-colour F] [--header-only]
                                                      a PNG, its size, and how much of it has colour
  container_check.py check-info URL KEY=VALUE...      /info settings (pool_size and threads are
                                                      the default model's)
  container_check.py prom-config SRC DEST TARGET SCRAPE_INTERVAL
                                                      Prometheus config derived from SRC
  container_check.py promql PROM_URL --dashboard JSON --rules YAML [--rate-interval 1m]
                                                      every dashboard and alert expression, queried
"""
from __future__ import annotations

import argparse
import json
import math
import re
import struct
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

# --------------------------------------------------------------------------------------
# PNG


def make_png(out: Path, width: int, height: int) -> None:
    """An 8-bit gray PNG: a ramp, a bright disc and some grain (a few MB at 12 MP, so the
    request's cost is in the service, not in the upload). Byte-string operations only: fast."""
    ramp = bytes(40 + (60 * x) // max(1, width - 1) for x in range(width))
    grains = []
    for k in range(8):
        g = bytes(((k * 7 + x * 13 + (x >> 3) * 5) % 9) for x in range(width))
        grains.append(bytes(a + b for a, b in zip(ramp, g)))
    cx, cy, rad = width * 0.6, height * 0.45, min(width, height) * 0.3
    brighter = bytes(min(255, v + 50) for v in range(256))
    rows = []
    for y in range(height):
        add = (150 * y) // max(1, height - 1)
        row = bytearray(grains[y % 8].translate(bytes(min(255, v + add) for v in range(256))))
        dy = abs(y - cy)
        if dy < rad:
            half = int(math.sqrt(rad * rad - dy * dy))
            lo, hi = max(0, int(cx) - half), min(width, int(cx) + half)
            row[lo:hi] = bytes(row[lo:hi]).translate(brighter)
        rows.append(b"\x00" + bytes(row))
    raw = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    out.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">IIBB", data[16:26])


def read_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, channels, rows) of an 8-bit, non-interlaced PNG (gray, gray+alpha, RGB, RGBA)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        bpp = channels
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif f != 0:
            raise ValueError(f"bad PNG filter {f}")
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def colour_fraction(channels: int, rows: list[bytes], step: int = 1) -> float:
    """Share of pixels whose max(R,G,B) - min(R,G,B) is 12 or more (of 255)."""
    if channels < 3:
        return 0.0
    coloured = total = 0
    for row in rows[::step]:
        for i in range(0, len(row), channels * step):
            r, g, b = row[i], row[i + 1], row[i + 2]
            total += 1
            coloured += max(r, g, b) - min(r, g, b) >= 12
    return coloured / max(1, total)


def check_png(args) -> int:
    data = Path(args.file).read_bytes()
    try:
        if args.header_only:
            width, height, depth, ctype = png_header(data)
            print(f"{args.file}: PNG {width}x{height}, {depth}-bit, colour type {ctype}, {len(data)} bytes")
            if args.width and (width, height) != (args.width, args.height):
                print(f"FAIL expected {args.width}x{args.height}")
                return 1
            return 0
        width, height, channels, rows = read_png(data)
    except ValueError as e:
        print(f"FAIL {args.file}: {e}")
        return 1
    step = max(1, int(math.sqrt(width * height / 200_000)))  # sample big images
    frac = colour_fraction(channels, rows, step)
    print(f"{args.file}: PNG {width}x{height}, {channels} channels, {frac:.1%} of pixels coloured")
    ok = True
    if args.width and (width, height) != (args.width, args.height):
        print(f"FAIL expected {args.width}x{args.height}")
        ok = False
    if frac < args.min_colour:
        print(f"FAIL less than {args.min_colour:.0%} of the pixels have colour")
        ok = False
    return 0 if ok else 1


# --------------------------------------------------------------------------------------
# HTTP


def get_json(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def check_info(args) -> int:
    info = get_json(args.url)
    default = next(m for m in info["models"] if m["name"] == info["default_model"])
    ok = True
    for kv in args.expect:
        key, want = kv.split("=", 1)
        have = default[key] if key in ("pool_size", "threads") else info[key]
        good = str(have) == want
        ok &= good
        print(f"  /info {key} = {have} ({'ok' if good else 'FAIL: expected ' + want})")
    return 0 if ok else 1


# --------------------------------------------------------------------------------------
# Prometheus


def prom_config(args) -> int:
    """The project's prometheus.yml with every colorizer scrape config pointed at TARGET (a
    static target instead of DNS discovery), short scrape/evaluation intervals so that a test
    of a minute sees many samples, and rule_files made absolute (they are relative to the
    config file, which moves to a temporary folder). Everything else is kept as it is."""
    import yaml

    src = Path(args.src)
    cfg = yaml.safe_load(src.read_text())
    g = cfg.setdefault("global", {})
    g["scrape_interval"] = args.interval
    g["evaluation_interval"] = args.interval
    g["scrape_timeout"] = args.interval
    cfg["rule_files"] = [str((src.parent / f).resolve()) for f in cfg.get("rule_files", [])]
    found = False
    for sc in cfg.get("scrape_configs", []):
        sc.pop("scrape_interval", None)
        sc.pop("scrape_timeout", None)
        if sc["job_name"] == "colorizer":
            for key in [k for k in sc if k.endswith("_sd_configs")]:
                del sc[key]
            sc["static_configs"] = [{"targets": [args.target]}]
            found = True
        elif sc["job_name"] == "prometheus":
            sc["static_configs"] = [{"targets": [args.self_target]}]
    if not found:
        print(f"FAIL {src} has no scrape config with job_name colorizer")
        return 1
    Path(args.dest).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return 0


class Prom:
    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def api(self, path: str, **params) -> dict:
        url = f"{self.base}/api/v1/{path}?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # 400/422: the body still says what went wrong
            try:
                return json.load(e)
            except ValueError:
                return {"status": "error", "error": f"HTTP {e.code}"}

    def query(self, expr: str) -> tuple[str | None, list]:
        """(error, result)."""
        r = self.api("query", query=expr)
        if r.get("status") != "success":
            return f"{r.get('errorType', 'error')}: {r.get('error')}", []
        data = r["data"]
        if data["resultType"] in ("scalar", "string"):
            return None, [{"metric": {}, "value": data["result"]}]
        return None, data["result"]


def finite(result: list) -> list:
    out = []
    for s in result:
        v = float(s["value"][1])
        if not (math.isnan(v) or math.isinf(v)):
            out.append(s)
    return out


COMPARISON = re.compile(r"==|!=|>=|<=|>|<")
NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
MODIFIER = re.compile(r"^\s*(bool\b\s*)?((on|ignoring)\s*\([^)]*\)\s*)?((group_left|group_right)\s*(\([^)]*\))?\s*)?")


def split_comparison(expr: str) -> tuple[str, str, str] | None:
    """(left, operator, right) of the first comparison operator outside brackets, strings and
    label matchers, or None. Enough for alert rules of the form `QUERY OP THRESHOLD`; an
    expression with `and`/`or`/`unless` at the top is not split (see check_alerts)."""
    depth, quote, i = 0, None, 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            m = COMPARISON.match(expr, i)
            if m:
                right = expr[m.end():]
                right = right[MODIFIER.match(right).end():]
                return expr[:i].strip(), m.group(0), right.strip()
        i += 1
    return None


def grafana_vars(prom: Prom, dashboard: dict) -> tuple[dict, list]:
    """Values of the dashboard's query variables, resolved as Grafana does
    (label_values(METRIC_SELECTOR, LABEL) -> /api/v1/label/LABEL/values?match[]=...), and one
    check row per variable. Multi-value variables become a regex alternation."""
    values, rows = {}, []
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q or "")
        if not m:
            rows.append((f"dashboard variable ${v['name']}", q, "FAIL", "not a label_values() query"))
            continue
        selector = m.group(1)
        for name, val in values.items():
            selector = selector.replace(f"${name}", val)
        r = prom.api(f"label/{m.group(2)}/values", **{"match[]": selector})
        got = r.get("data") or []
        if r.get("status") != "success" or not got:
            rows.append((f"dashboard variable ${v['name']}", q, "FAIL", r.get("error") or "no values"))
            values[v["name"]] = ".*"
            continue
        rows.append((f"dashboard variable ${v['name']}", q, "ok", ", ".join(got)))
        esc = [re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\\\1", s) for s in got]
        values[v["name"]] = esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"
    return values, rows


def dashboard_exprs(dashboard: dict) -> list[tuple[str, str]]:
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel \"{p.get('title')}\" {t.get('refId', '')}", t["expr"]))
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    return out


def check_query(prom: Prom, where: str, expr: str) -> tuple[str, str, str, str]:
    err, result = prom.query(expr)
    if err:
        return (where, expr, "FAIL", err)
    good = finite(result)
    if not good:
        return (where, expr, "FAIL", "no data" if not result else f"{len(result)} series, all NaN/Inf")
    vals = ", ".join(f"{float(s['value'][1]):.4g}" for s in good[:3]) + (" ..." if len(good) > 3 else "")
    return (where, expr, "ok", f"{len(good)} series: {vals}")


def check_alerts(prom: Prom, rules: dict) -> list:
    """Alert expressions are conditions: when the service is healthy they are meant to be
    empty (`up == 0`, `ratio > 0.05`), so "no data" from the whole expression proves nothing.
    Each alert is therefore checked twice:
      1. the whole expression must evaluate without error (its result may be empty), and
         Prometheus' own evaluation of the loaded rule must report health "ok";
      2. it is split at its top-level comparison (`QUERY OP THRESHOLD` or `QUERY OP QUERY`)
         and every side that is a query (not a number) must return data: that is what the
         alert watches, so a misspelt metric or label shows up as "no data" here.
    An expression without a top-level comparison must return data as a whole."""
    rows = []
    loaded = {}
    r = prom.api("rules", type="alert")
    for g in r.get("data", {}).get("groups", []):
        for rule in g["rules"]:
            loaded[rule["name"]] = rule
    for g in rules.get("groups", []):
        for rule in g.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            expr = " ".join(rule["expr"].split())
            where = f"alert {name}"
            err, result = prom.query(expr)
            if err:
                rows.append((where, expr, "FAIL", err))
                continue
            state = loaded.get(name)
            if state is None:
                rows.append((where, expr, "FAIL", "rule not loaded by Prometheus"))
                continue
            if state.get("health") != "ok":
                rows.append((where, expr, "FAIL", f"rule health {state.get('health')}: {state.get('lastError')}"))
                continue
            rows.append((where, expr, "ok", f"evaluates; rule health ok, state {state.get('state')}, "
                                             f"{len(result)} series now"))
            parts = split_comparison(expr)
            if parts is None or re.search(r"\b(and|or|unless)\b", re.sub(r"\{[^}]*\}", "", expr)):
                rows.append(check_query(prom, where + " (whole)", expr))
                continue
            left, op, right = parts
            for side, e in (("left of " + op, left), ("right of " + op, right)):
                if NUMBER.match(e):
                    continue
                rows.append(check_query(prom, f"{where} ({side})", e))
    return rows


def promql(args) -> int:
    import yaml

    prom = Prom(args.prom)
    dashboard = json.loads(Path(args.dashboard).read_text())
    values, rows = grafana_vars(prom, dashboard)
    for where, expr in dashboard_exprs(dashboard):
        e = expr.replace("$__rate_interval", args.rate_interval)
        for name, val in values.items():
            e = e.replace(f"${{{name}}}", val).replace(f"${name}", val)
        rows.append(check_query(prom, where, e))
    rows.extend(check_alerts(prom, yaml.safe_load(Path(args.rules).read_text())))
    failed = [r for r in rows if r[2] != "ok"]
    for where, expr, status, detail in rows:
        print(f"  [{status:>4}] {where}: {detail}")
        if status != "ok" or args.verbose:
            print(f"         {expr}")
    print(f"  {len(rows) - len(failed)} of {len(rows)} checks returned data"
          f" (dashboard variables resolved to {values}, $__rate_interval = {args.rate_interval})")
    if failed:
        print("  FAILED (error or no data):")
        for where, expr, _, detail in failed:
            print(f"    {where}: {detail}\n      {expr}")
        return 1
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("make-png")
    s.add_argument("out", type=Path)
    s.add_argument("width", type=int)
    s.add_argument("height", type=int)
    s = sub.add_parser("check-png")
    s.add_argument("file")
    s.add_argument("--width", type=int)
    s.add_argument("--height", type=int)
    s.add_argument("--min-colour", type=float, default=0.0)
    s.add_argument("--header-only", action="store_true", help="check the IHDR only (big images)")
    s = sub.add_parser("check-info")
    s.add_argument("url")
    s.add_argument("expect", nargs="+")
    s = sub.add_parser("prom-config")
    s.add_argument("src")
    s.add_argument("dest")
    s.add_argument("target")
    s.add_argument("interval")
    s.add_argument("--self-target", default="localhost:9090")
    s = sub.add_parser("promql")
    s.add_argument("prom")
    s.add_argument("--dashboard", required=True)
    s.add_argument("--rules", required=True)
    s.add_argument("--rate-interval", default="1m")
    s.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    if a.cmd == "make-png":
        make_png(a.out, a.width, a.height)
        return 0
    return {"check-png": check_png, "check-info": check_info, "prom-config": prom_config, "promql": promql}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
