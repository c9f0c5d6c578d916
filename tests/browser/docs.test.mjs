// Browser test of Swagger UI at /docs: it renders from the vendored bundle with no network, and
// "Try it out" on POST /colorize uploads an image and shows the 200 answer with the image.
// Run: scripts/install-browser.sh && node --test tests/browser/

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ROOT, SHOTS, grayPng, launchChromium, startService, stopService, waitReady } from "./harness.mjs";

let service;
let browser;

before(async () => {
  browser = await launchChromium();
  service = await startService(["--no-embedded-models", "--model", `fixture=${join(ROOT, "tests/fixtures/untrained-colorizer.onnx")}`]);
  await waitReady(service.base);
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopService(service);
});

test("Swagger UI renders offline and Try it out colorizes an upload", { timeout: 90_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const origin = new URL(service.base).origin;
  const outside = [];
  context.on("request", (req) => {
    const url = new URL(req.url());
    if (!["blob:", "data:"].includes(url.protocol) && url.origin !== origin) outside.push(req.url());
  });
  await page.goto(`${service.base}/docs/`);
  const op = page.locator("#operations-colorize-colorize");
  await op.waitFor({ timeout: 30_000 });
  await op.locator(".opblock-summary").click();
  await op.getByRole("button", { name: "Try it out" }).click();

  const dir = mkdtempSync(join(tmpdir(), "colorizer-docs-"));
  const file = join(dir, "gray.png");
  writeFileSync(file, grayPng(120, 80, (x, y) => 60 + y + 40 * Math.sin(x / 7)));
  const status = op.locator(".live-responses-table .response .response-col_status").first();
  try {
    await op.locator('input[type="file"]').first().setInputFiles(file);
    await op.getByRole("button", { name: "Execute" }).click();
    await status.waitFor({ timeout: 40_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });   // the upload has been read (or failed)
  }
  assert.equal((await status.textContent()).trim(), "200");
  // Swagger UI shows an image answer as an <img>; it must be the colorized picture.
  const img = op.locator(".live-responses-table img").first();
  await img.waitFor({ timeout: 10_000 });
  const size = await img.evaluate((el) => new Promise((res) => {
    const done = () => res([el.naturalWidth, el.naturalHeight]);
    if (el.complete && el.naturalWidth) done(); else el.onload = done;
  }));
  assert.deepEqual(size, [120, 80]);
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, "swagger-try-it-out.png"), fullPage: false });
  assert.deepEqual(outside, [], "Swagger UI must load nothing from outside the service");
  await context.close();
});
