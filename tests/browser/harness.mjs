// Shared by the browser tests: a gray PNG writer, the service binary started on a free port,
// and Debian's headless Chromium through playwright-core.
//
// Environment: COLORIZER_BIN (default target/debug/colorizer), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOTS (default target/screenshots).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = resolve(ROOT, process.env.COLORIZER_BIN || "target/debug/colorizer");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/** Where the tests write their screenshots: an ignored folder, unless SCREENSHOTS names another
 *  (`scripts/screenshots.sh` sets it to docs/screenshots to regenerate the committed figures). */
export const SHOTS = resolve(ROOT, process.env.SCREENSHOTS || "target/screenshots");

/** Launches headless Chromium (a fresh temporary profile per launch, removed on close). */
export async function launchChromium() {
  assert.ok(existsSync(BIN), `no service binary at ${BIN}: run \`cargo build\` (or set COLORIZER_BIN)`);
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run scripts/install-browser.sh`);
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (e) {
    assert.fail(`playwright-core is not installed (${e.message}): run scripts/install-browser.sh`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

// ---------------------------------------------------------------- a tiny gray PNG writer

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** An 8-bit grayscale PNG of w x h drawn by f(x, y) -> 0..255. */
export function grayPng(w, h, f) {
  const raw = Buffer.alloc((w + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w + 1)] = 0;
    for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = Math.max(0, Math.min(255, Math.round(f(x, y))));
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// ---------------------------------------------------------------- the service

/** Starts the service binary on a free port with `extraArgs`; resolves to { proc, base, log }. */
export function startService(extraArgs) {
  return new Promise((resolveStart, rejectStart) => {
    const args = ["--host", "127.0.0.1", "--port", "0", "--log-json", "--drain-timeout-s", "2", ...extraArgs];
    const proc = spawn(BIN, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let log = "";
    let done = false;
    const timer = setTimeout(() => finish(new Error(`the service did not say where it listens within 20 s:\n${log}`)), 20_000);
    function finish(err, base) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        proc.kill("SIGKILL");
        rejectStart(err);
      } else {
        const svc = { proc, base, get log() { return log; } };
        started.push(svc);
        resolveStart(svc);
      }
    }
    const onData = (d) => {
      log += d.toString();
      // eslint-disable-next-line no-control-regex
      const plain = log.replace(/\x1b\[[0-9;]*m/g, "");
      const m = plain.match(/listening[^\n]*?127\.0\.0\.1:(\d+)/);
      if (m) finish(null, `http://127.0.0.1:${m[1]}`);
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.on("error", (e) => finish(e));
    proc.on("exit", (code) => finish(new Error(`the service exited (code ${code}) before listening:\n${log}`)));
  });
}

export async function waitReady(base) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error("/readyz did not answer 200 within 20 s");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM, then SIGKILL after 3 s. */
export function stopService(service) {
  if (!service?.proc || service.proc.exitCode !== null) return Promise.resolve();
  const proc = service.proc;
  return new Promise((res) => {
    const kill = setTimeout(() => proc.kill("SIGKILL"), 3000);
    proc.on("exit", () => {
      clearTimeout(kill);
      res();
    });
    proc.kill("SIGTERM");
  });
}

const started = [];
// Never leave a service behind, whatever happens.
process.on("exit", () => {
  for (const s of started) if (s.proc.exitCode === null) s.proc.kill("SIGKILL");
});
