#!/usr/bin/env python3
"""Draws the demo page's built-in gray sample images (web/samples/*.png).

Synthetic scenes only (no photos): a landscape, a portrait silhouette, a still life and a
street. Python standard library only (a tiny zlib/struct PNG writer); deterministic, so
running it again gives the same bytes.

    python3 scripts/make-samples.py [OUTDIR]   # default: web/samples
"""

import math
import os
import struct
import sys
import zlib

SS = 2  # supersampling per axis (anti-aliased edges)


def write_png_gray(path, width, height, rows):
    """Writes an 8-bit grayscale PNG; rows is a list of bytes objects of length width."""

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = bytearray()
    prev = bytes(width)
    for row in rows:
        # Filter "Up" (2): smooth gradients compress well (the first row is diffed against zeros).
        raw.append(2)
        raw.extend((row[i] - prev[i]) & 0xFF for i in range(width))
        prev = row
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    data += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def render(width, height, shade):
    """shade(u, v) -> luminance 0..1 for u in [0, 1) across and v in [0, 1) down (v scaled by
    height/width is not applied: each scene handles its own aspect)."""
    rows = []
    for y in range(height):
        row = bytearray(width)
        for x in range(width):
            acc = 0.0
            for sy in range(SS):
                for sx in range(SS):
                    u = (x + (sx + 0.5) / SS) / width
                    v = (y + (sy + 0.5) / SS) / height
                    acc += shade(u, v)
            g = acc / (SS * SS)
            row[x] = max(0, min(255, int(round(g * 255))))
        rows.append(bytes(row))
    return rows


def smooth(e0, e1, x):
    t = max(0.0, min(1.0, (x - e0) / (e1 - e0)))
    return t * t * (3 - 2 * t)


def hash01(i, j):
    """Deterministic pseudo-random value in [0, 1) for an integer lattice point."""
    h = (i * 374761393 + j * 668265263) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    return (h ^ (h >> 16)) / 2**32


def value_noise(x, y):
    i, j = math.floor(x), math.floor(y)
    fx, fy = x - i, y - j
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = hash01(i, j), hash01(i + 1, j)
    c, d = hash01(i, j + 1), hash01(i + 1, j + 1)
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def landscape(u, v):
    """Sky gradient with a sun over far mountains, green hills, a tree and a lake."""
    aspect = 384 / 256
    x = u * aspect
    # Sky: darker at the top, bright near the horizon.
    g = 0.48 + 0.42 * v / 0.55
    # Sun and its glow.
    d = math.hypot(x - 1.12, v - 0.18)
    g += 0.25 * math.exp(-((d / 0.12) ** 2))
    if d < 0.055:
        g = 0.98
    # Clouds.
    cl = value_noise(x * 5, v * 14) * 0.6 + value_noise(x * 11, v * 30) * 0.4
    g += 0.12 * smooth(0.55, 0.8, cl) * (1 - smooth(0.2, 0.4, v))
    # Far mountains.
    ridge = 0.42 - 0.10 * math.sin(x * 4.1 + 0.5) - 0.05 * math.sin(x * 9.3 + 1.7) - 0.02 * math.sin(x * 23)
    if v > ridge:
        g = 0.62 - 0.15 * (v - ridge) + 0.05 * math.sin(x * 40 + v * 25) * (v - ridge)
        # Snow on the peaks: above a snow line, fading into the rock.
        g += 0.3 * (1 - smooth(0.31, 0.345, v + 0.01 * math.sin(x * 57)))
    # Lake on the right.
    lake_top = 0.60
    if v > lake_top and x > 0.85:
        g = 0.70 - 0.25 * (v - lake_top) + 0.04 * math.sin(v * 180 + math.sin(x * 20) * 2)
    # Near hills.
    hill = 0.58 + 0.06 * math.sin(x * 3.2 + 2.0) + 0.03 * math.sin(x * 7.7)
    lake_edge = 0.85 + 0.8 * (v - 0.6) ** 2 * 4
    if v > hill and (x < lake_edge or v > 0.92):
        g = 0.42 - 0.18 * (v - hill) + 0.06 * (value_noise(x * 30, v * 60) - 0.5)
    # A tree: trunk and a round crown.
    if abs(x - 0.42) < 0.018 and 0.55 < v < 0.78:
        g = 0.22
    dc = math.hypot((x - 0.42) / 0.11, (v - 0.50) / 0.13)
    if dc < 1:
        g = 0.28 + 0.14 * (1 - dc) * (0.6 + 0.4 * value_noise(x * 60, v * 60)) + 0.05 * ((x - 0.42) > 0)
    return g


def portrait(u, v):
    """Head and shoulders against a lit wall: skin, hair, a shirt."""
    aspect = 256 / 320
    x = u * aspect
    cx = 0.5 * aspect
    # Background: soft spotlight on the wall.
    g = 0.55 + 0.3 * math.exp(-(((x - 0.3) / 0.4) ** 2 + ((v - 0.3) / 0.5) ** 2))
    # Shoulders / shirt.
    sh = ((x - cx) / 0.42) ** 2 + ((v - 1.08) / 0.36) ** 2
    if sh < 1:
        g = 0.30 + 0.12 * (1 - sh) + 0.04 * math.sin((x - cx) * 60) * (v > 0.85)
        # Collar V.
        if abs(x - cx) < (v - 0.74) * 0.5 and v < 0.92:
            g = 0.72
    # Neck.
    if abs(x - cx) < 0.075 and 0.52 < v < 0.78:
        g = 0.64 - 0.6 * max(0.0, (x - cx)) - 0.08 * smooth(0.52, 0.6, v) * 0
    # Head: lit from the upper left.
    hx, hy = (x - cx) / 0.17, (v - 0.40) / 0.22
    hd = hx * hx + hy * hy
    if hd < 1:
        nz = math.sqrt(max(0.0, 1 - hd))
        light = max(0.0, -0.5 * hx - 0.4 * hy + 0.75 * nz)
        g = 0.38 + 0.42 * light
        # Eyes, brows, mouth.
        for ex in (-0.38, 0.38):
            if ((hx - ex) / 0.16) ** 2 + ((hy + 0.08) / 0.07) ** 2 < 1:
                g = 0.18
            if abs(hx - ex) < 0.2 and -0.30 < hy < -0.24:
                g = 0.22
        if abs(hx) < 0.28 and 0.45 < hy < 0.52:
            g = 0.40
        # Nose shadow.
        if 0.02 < hx < 0.1 and -0.05 < hy < 0.3:
            g -= 0.06
    # Hair: a cap over the top of the head.
    hr = ((x - cx) / 0.19) ** 2 + ((v - 0.36) / 0.235) ** 2
    if hr < 1 and (v < 0.27 + 0.06 * abs(x - cx) / 0.19 or (abs(x - cx) > 0.155 and v < 0.45)):
        g = 0.14 + 0.08 * value_noise(x * 80, v * 20)
    return g


def still_life(u, v):
    """Fruit, a bowl and a bottle on a wooden table against a wall."""
    aspect = 320 / 256
    x = u * aspect
    # Wall with a soft light from the left.
    g = 0.72 - 0.22 * u
    table = 0.66
    if v > table:
        # Wood grain.
        g = 0.46 + 0.04 * math.sin(x * 35 + 6 * value_noise(x * 3, v * 12)) - 0.2 * (v - table)
        if v < table + 0.015:
            g = 0.6
    # Shadow of the objects on the table.
    if table < v < table + 0.06 and 0.2 < x < 1.05:
        g -= 0.08 * (1 - (v - table) / 0.06)

    def sphere(cx, cy, r, base, spec=0.3):
        dx, dy = (x - cx) / r, (v - cy) / r
        d2 = dx * dx + dy * dy
        if d2 >= 1:
            return None
        nz = math.sqrt(1 - d2)
        lam = max(0.0, -0.55 * dx - 0.45 * dy + 0.7 * nz)
        s = max(0.0, lam) ** 30 * spec
        return base * (0.45 + 0.65 * lam) + s

    # Bottle (tall, dark glass) at the back.
    bx = 0.95
    body = abs(x - bx) < 0.09 and 0.22 < v < table + 0.005
    neck = abs(x - bx) < 0.03 and 0.06 < v <= 0.22
    shoulder = 0.16 < v <= 0.22 and abs(x - bx) < 0.03 + 0.06 * (v - 0.16) / 0.06
    if body or neck or shoulder:
        g = 0.2 + 0.2 * max(0.0, 1 - abs(x - (bx - 0.04)) / 0.03) + 0.05 * (x < bx)
    # Bowl: lower half ellipse with a rim.
    bwx, bwy = 0.52, 0.56
    ex, ey = (x - bwx) / 0.26, (v - bwy) / 0.11
    if ey > 0 and ex * ex + ey * ey < 1:
        g = 0.62 - 0.3 * (ex * 0.5 + 0.5) + 0.1 * (1 - ey)
    # Fruit in the bowl: three "apples/oranges".
    for cx, cy, r, base in ((0.42, 0.49, 0.09, 0.55), (0.6, 0.47, 0.1, 0.72), (0.52, 0.40, 0.08, 0.48)):
        s = sphere(cx, cy, r, base)
        if s is not None and v < bwy + 0.02:
            g = s
    # Rim of the bowl in front of the fruit.
    if abs(ex * ex + ey * ey * 4 - 1) < 0.06 and ey > -0.15 and ey < 0.2 and abs(ex) < 1:
        g = 0.78
    # A lemon on the table.
    s = sphere(0.22, table + 0.0, 0.06, 0.85, spec=0.2)
    if s is not None and v < table + 0.04:
        g = s
    return g


def street(u, v):
    """Houses along a street under the sky, with windows, a road and a lamp post."""
    aspect = 384 / 256
    x = u * aspect
    g = 0.80 - 0.25 * (1 - v)  # sky
    horizon = 0.62
    # Buildings: (left, right, top, tone).
    blds = ((0.0, 0.28, 0.20, 0.58), (0.28, 0.55, 0.32, 0.42), (0.55, 0.80, 0.12, 0.66), (0.80, 1.1, 0.26, 0.50), (1.1, 1.5, 0.18, 0.36))
    for left, right, top, tone in blds:
        if left <= x < right and v > top:
            g = tone - 0.06 * ((x - left) / (right - left))
            # Roof line.
            if v < top + 0.015:
                g = tone - 0.2
            # Window grid.
            wx = (x - left) / (right - left) * 4
            wy = (v - top - 0.04) / 0.08
            if wy > 0 and v < horizon - 0.06:
                fx, fy = wx - math.floor(wx), wy - math.floor(wy)
                if 0.25 < fx < 0.75 and 0.2 < fy < 0.8:
                    lit = hash01(int(wx + left * 100), int(wy)) > 0.6
                    g = 0.9 if lit else 0.22
            # Door.
            if abs(x - (left + right) / 2) < 0.03 and v > horizon - 0.09:
                g = 0.2
    # Pavement and road.
    if v > horizon:
        g = 0.55 - 0.1 * (v - horizon)
        if v > horizon + 0.06:
            g = 0.30 + 0.05 * value_noise(x * 60, v * 60)
            # Dashed centre line in perspective.
            lane_v = 0.84
            if abs(v - lane_v) < 0.012 and (x * 8) % 1 < 0.55:
                g = 0.85
        if horizon + 0.055 < v < horizon + 0.065:
            g = 0.7
    # Lamp post with a lamp.
    if abs(x - 1.02) < 0.008 and 0.25 < v < horizon + 0.04:
        g = 0.15
    if math.hypot(x - 1.02, v - 0.24) < 0.025:
        g = 0.95
    return g


SCENES = (
    ("landscape", 384, 256, landscape),
    ("portrait", 256, 320, portrait),
    ("still-life", 320, 256, still_life),
    ("street", 384, 256, street),
)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "web", "samples")
    os.makedirs(out, exist_ok=True)
    for name, w, h, fn in SCENES:
        path = os.path.join(out, name + ".png")
        write_png_gray(path, w, h, render(w, h, fn))
        print(f"{path}: {w}x{h}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
