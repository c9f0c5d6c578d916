// Takes docs/screenshots/demo-trained.png: the demo page with the embedded trained default model
// on one of the built-in samples (the browser test uses untrained fixture models instead), with
// optional colour hints clicked onto the result (fractions of the picture's width and height).
// Run: cargo build && scripts/install-browser.sh && \
//   node tests/browser/screenshot-trained.mjs [Sample] [--hint FX,FY,#rrggbb ...] [--out PATH]

import { join } from "node:path";

import { ROOT, launchChromium, startService, stopService, waitReady } from "./harness.mjs";

const args = process.argv.slice(2);
const hints = [];
let sample = "Portrait";
let out = join(ROOT, "docs", "screenshots", "demo-trained.png");
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--hint") {
    const [fx, fy, color] = args[++i].split(",");
    hints.push({ fx: Number(fx), fy: Number(fy), color });
  } else if (args[i] === "--out") {
    out = args[++i];
  } else {
    sample = args[i];
  }
}

const done = (page, previous) =>
  page.waitForFunction(
    (prev) => document.getElementById("status").textContent.startsWith("Done") && document.getElementById("result").src !== prev,
    previous,
    { timeout: 20_000 },
  );

const browser = await launchChromium();
const service = await startService([]);
try {
  await waitReady(service.base);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${service.base}/`);
  await page.waitForFunction(() => document.querySelectorAll("#model option[value]").length >= 3);
  await page.getByRole("button", { name: sample }).click();
  await done(page, "");
  for (const h of hints) {
    const previous = await page.evaluate(() => document.getElementById("result").src);
    await page.getByLabel("Hint colour").fill(h.color);
    const box = await page.locator("#result").boundingBox();
    await page.mouse.click(box.x + h.fx * box.width, box.y + h.fy * box.height);
    await done(page, previous);
  }
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await stopService(service);
}
