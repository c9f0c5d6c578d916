// Takes docs/screenshots/demo-trained.png: the demo page with the embedded trained default model
// on one of the built-in samples (the browser test uses an untrained fixture model instead).
// Run: cargo build && scripts/install-browser.sh && node tests/browser/screenshot-trained.mjs [Sample]

import { join } from "node:path";

import { ROOT, launchChromium, startService, stopService, waitReady } from "./harness.mjs";

const sample = process.argv[2] || "Portrait";
const browser = await launchChromium();
const service = await startService([]);
try {
  await waitReady(service.base);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${service.base}/`);
  await page.waitForFunction(() => document.querySelectorAll("#model option[value]").length >= 3);
  await page.getByRole("button", { name: sample }).click();
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Done"), null, { timeout: 20_000 });
  const out = join(ROOT, "docs", "screenshots", "demo-trained.png");
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await stopService(service);
}
