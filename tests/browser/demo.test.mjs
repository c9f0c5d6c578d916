// Browser test of the demo page (`GET /`): starts the service binary on a free port with the
// untrained fixture models, drives Debian's headless Chromium with playwright-core, and saves
// screenshots to $SCREENSHOTS (default target/screenshots, ignored; scripts/screenshots.sh
// regenerates the committed ones). Run: scripts/install-browser.sh && node --test tests/browser/
//
// Environment: COLORIZER_BIN (default target/debug/colorizer), CHROMIUM (default /usr/bin/chromium).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

import { ROOT, SHOTS, grayPng, launchChromium, startService, stopService, waitReady } from "./harness.mjs";
const MAX_BODY = 2_000_000; // small, so that the page's own size check can be tested cheaply

let service; // { proc, base, log }
let browser;
const problems = []; // page errors and requests to other hosts, checked at the end

// ---------------------------------------------------------------- page helpers

async function newPage(contextOptions) {
  const context = await browser.newContext({ acceptDownloads: true, ...contextOptions });
  const origin = new URL(service.base).origin;
  const page = await context.newPage();
  const colorizeRequests = [];
  context.on("request", (req) => {
    const url = new URL(req.url());
    if (url.protocol === "blob:" || url.protocol === "data:") return;
    if (url.origin !== origin) problems.push(`request outside the service's origin: ${req.url()}`);
    if (url.pathname === "/colorize") colorizeRequests.push(url);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // The API's error answers and the network failure provoked below are logged by Chromium as
    // failed loads; anything else logged as an error fails the test.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
  });
  await page.goto(service.base + "/");
  // /info has arrived and filled the model picker.
  await page.waitForFunction(() => document.querySelectorAll("#model option[value]").length >= 2 && !document.getElementById("model").disabled);
  return { context, page, colorizeRequests };
}

/** Waits until the result shows an answer to the given (or a newer) request. */
async function waitResult(page, previousSrc = null) {
  await page.waitForFunction(
    (prev) => {
      const img = document.getElementById("result");
      return (
        img && !img.hidden && img.src && img.src !== prev && img.complete && img.naturalWidth > 0 &&
        document.getElementById("results").getAttribute("aria-busy") === "false" &&
        document.getElementById("status").textContent.startsWith("Done")
      );
    },
    previousSrc,
    { timeout: 15_000 },
  );
  return page.evaluate(() => document.getElementById("result").src);
}

/** Pixel statistics of the result image, drawn to a canvas in the page. */
function resultStats(page) {
  return page.evaluate(() => {
    const img = document.getElementById("result");
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0);
    window.__resultCanvas = ctx; // resultPixelAt reads the same drawing
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let chroma = 0;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) {
      chroma += Math.abs(d[i] - d[i + 1]) + Math.abs(d[i + 1] - d[i + 2]);
      sum += d[i] * 3 + d[i + 1] * 5 + d[i + 2] * 7;
    }
    const n = d.length / 4;
    // A small sample of pixels to compare two results with.
    const sample = [];
    for (let i = 0; i < d.length; i += 4 * 97) sample.push(d[i], d[i + 1], d[i + 2]);
    return { width: img.naturalWidth, height: img.naturalHeight, chroma: chroma / n, sum, sample };
  });
}

function meanAbsDiff(a, b) {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

// ---------------------------------------------------------------- setup

before(async () => {
  browser = await launchChromium();
  service = await startService([
    "--no-embedded-models",
    "--model", `fixture=${join(ROOT, "tests/fixtures/untrained-colorizer.onnx")}`,
    "--model", `l2=${join(ROOT, "tests/fixtures/untrained-l2.onnx")}`,
    "--model", `hint=${join(ROOT, "tests/fixtures/hint-fixture.onnx")}`,
    "--default-model", "fixture",
    "--max-body-bytes", String(MAX_BODY),
  ]);
  await waitReady(service.base);
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopService(service);
});

// ---------------------------------------------------------------- the tests

test("desktop: upload, colour result of the right size, temperature, compare, download, errors", { timeout: 45_000 }, async (t) => {
  const { context, page, colorizeRequests } = await newPage({ viewport: { width: 1280, height: 800 } });

  // The model picker comes from /info, default selected, and the page says the model is untrained.
  assert.equal(await page.getByLabel("Model").inputValue(), "fixture");
  assert.ok(await page.locator("#untrained").isVisible(), "the untrained-model warning shows");
  assert.match(await page.locator("#untrained").textContent(), /not been trained/);
  assert.equal(await page.getByLabel("Temperature").inputValue(), "0.38", "the slider starts at the model's default");

  // Upload a gray image of an odd size made here.
  const W = 301;
  const H = 203;
  const gray = grayPng(W, H, (x, y) => 40 + 170 * (y / H) + 25 * Math.sin(x / 9) * Math.cos(y / 13));
  await page.locator("#file").setInputFiles({ name: "gradient.png", mimeType: "image/png", buffer: gray });
  let src = await waitResult(page);
  assert.equal(colorizeRequests.length, 1, "one request for one upload");
  const first = colorizeRequests[0];
  assert.equal(first.searchParams.get("model"), "fixture");
  assert.equal(first.searchParams.get("temperature"), "0.38");

  const s1 = await resultStats(page);
  assert.equal(s1.width, W, "result width equals the input's");
  assert.equal(s1.height, H, "result height equals the input's");
  assert.ok(s1.chroma > 3, `the result is colour (mean |r-g|+|g-b| = ${s1.chroma.toFixed(2)})`);
  assert.equal(await page.locator("#result-size").textContent(), `${W} × ${H}`);
  assert.equal(await page.locator("#orig-size").textContent(), `${W} × ${H}`);

  // Timings from Server-Timing and the request id are shown.
  const timings = await page.locator("#timings").textContent();
  for (const name of ["decode", "infer", "encode", "round trip"]) assert.ok(timings.includes(name), `timings show ${name}: ${timings}`);
  assert.match(await page.locator("#request-id").textContent(), /^[0-9a-f-]{36}$/);

  // Before/after slider: keyboard operable, and draggable with the pointer.
  const range = page.getByLabel(/Before and after divider/);
  await range.focus();
  for (let i = 0; i < 5; i++) await page.keyboard.press("ArrowLeft");
  assert.equal(await range.inputValue(), "45");
  assert.equal(await page.locator("#compare").evaluate((e) => e.style.getPropertyValue("--pos")), "45%");
  const box = await page.locator("#compare").boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  const dragged = Number(await range.inputValue());
  assert.ok(dragged >= 15 && dragged <= 25, `dragging moved the divider to ~20% (got ${dragged})`);

  // Temperature: moving the slider re-runs the request (debounced) and changes the result.
  const temp = page.getByLabel("Temperature");
  await temp.focus();
  await page.keyboard.press("End");
  src = await waitResult(page, src);
  assert.equal(colorizeRequests.length, 2, "one new request after the slider moved");
  assert.equal(colorizeRequests[1].searchParams.get("temperature"), "1.00");
  const s2 = await resultStats(page);
  assert.equal(s2.width, W);
  assert.equal(s2.height, H);
  const diff = meanAbsDiff(s1.sample, s2.sample);
  assert.ok(diff > 0.5, `the result changed with the temperature (mean abs diff ${diff.toFixed(2)})`);
  t.diagnostic(`chroma at T=0.38: ${s1.chroma.toFixed(2)}, at T=1: ${s2.chroma.toFixed(2)}; mean abs pixel change ${diff.toFixed(2)}`);
  assert.equal(await page.locator("#meta-temp").textContent(), "1");
  // Several quick moves make one request, not one per step.
  for (let i = 0; i < 4; i++) await page.keyboard.press("ArrowLeft");
  src = await waitResult(page, src);
  await page.waitForTimeout(400);
  assert.equal(colorizeRequests.length, 3, "quick slider moves are debounced into one request");
  assert.equal(colorizeRequests[2].searchParams.get("temperature"), "0.96");

  // Download: named after the input.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download the result" }).click()]);
  assert.equal(download.suggestedFilename(), "gradient-colorized.png");
  const saved = readFileSync(await download.path());
  assert.deepEqual([...saved.subarray(1, 4)], [0x50, 0x4e, 0x47], "the download is a PNG");

  // The l2 model predicts ab: no temperature, slider disabled with a note.
  await page.getByLabel("Model").selectOption("l2");
  src = await waitResult(page, src);
  assert.ok(await temp.isDisabled(), "the temperature slider is disabled for an ab model");
  assert.match(await page.locator("#temp-help").textContent(), /does not apply/);
  const l2req = colorizeRequests.at(-1);
  assert.equal(l2req.searchParams.get("model"), "l2");
  assert.equal(l2req.searchParams.get("temperature"), null);
  assert.equal(await page.locator("#meta-temp").textContent(), "not used by this model");
  const s3 = await resultStats(page);
  assert.deepEqual([s3.width, s3.height], [W, H]);
  await page.getByLabel("Model").selectOption("fixture");
  src = await waitResult(page, src);
  assert.ok(!(await temp.isDisabled()));
  assert.equal(await temp.inputValue(), "0.38", "switching model resets the temperature to its default");

  // Overloaded (503 + Retry-After, simulated here): the page says so and retries by itself.
  let refused = 0;
  await page.route("**/colorize?*", async (route) => {
    if (refused++ === 0) {
      await route.fulfill({
        status: 503,
        headers: { "content-type": "application/problem+json", "retry-after": "1" },
        body: JSON.stringify({ type: "urn:colorizer:problem:overloaded", title: "Overloaded", status: 503, detail: "all sessions are busy" }),
      });
    } else {
      await route.continue();
    }
  });
  await page.getByRole("button", { name: "Run again" }).click();
  await page.locator("#error").waitFor({ state: "visible" });
  assert.match(await page.locator("#error-title").textContent(), /busy; retrying in 1 s/);
  src = await waitResult(page, src);
  assert.ok(await page.locator("#error").isHidden(), "the error goes away once the retry worked");
  await page.unroute("**/colorize?*");

  // A text file named .png: the service answers 400 and the page says it is not an image.
  const before = colorizeRequests.length;
  await page.locator("#file").setInputFiles({ name: "notes.png", mimeType: "image/png", buffer: Buffer.from("these are my notes, not a picture\n") });
  await page.locator("#error").waitFor({ state: "visible" });
  assert.match(await page.locator("#error-title").textContent(), /not an image/);
  assert.equal(colorizeRequests.length, before + 1);
  assert.ok(await page.locator("#result").isHidden(), "no stale result next to the new input");
  assert.match(await page.locator("#status").textContent(), /^Error/);

  // Too big for the service's max_body_bytes: refused by the page before sending.
  await page.locator("#file").setInputFiles({ name: "huge.png", mimeType: "image/png", buffer: Buffer.alloc(MAX_BODY + 1) });
  await page.locator("#error-title", { hasText: "too big" }).waitFor();
  assert.match(await page.locator("#error-detail").textContent(), /up to 1\.9 MB/);
  assert.equal(colorizeRequests.length, before + 1, "nothing sent for a file over the limit");

  // A built-in sample, for the screenshot.
  await page.getByRole("button", { name: "Landscape" }).click();
  await waitResult(page, null);
  assert.ok(await page.locator("#error").isHidden());
  const s4 = await resultStats(page);
  assert.deepEqual([s4.width, s4.height], [384, 256]);
  await page.locator("#cmp-range").fill("50").catch(() => page.locator("#cmp-range").evaluate((e) => { e.value = "50"; e.dispatchEvent(new Event("input")); }));
  await page.evaluate(() => document.activeElement?.blur());
  await page.screenshot({ path: join(SHOTS, "demo-desktop.png"), fullPage: true });
  assert.ok(statSync(join(SHOTS, "demo-desktop.png")).size > 10_000);
  await context.close();
});

test("drop, paste, and a clear message for each API error", { timeout: 30_000 }, async () => {
  const { context, page, colorizeRequests } = await newPage({ viewport: { width: 1280, height: 800 } });
  // Drop a file on the drop zone, then paste one, as the browser would deliver them.
  const deliver = (kind, name) =>
    page.evaluate(
      async ({ kind, name }) => {
        const blob = await (await fetch("static/samples/street.png")).blob();
        const dt = new DataTransfer();
        dt.items.add(new File([blob], name, { type: "image/png" }));
        const target = kind === "drop" ? document.getElementById("drop") : document;
        const ev = kind === "drop"
          ? new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true })
          : new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true });
        target.dispatchEvent(ev);
      },
      { kind, name },
    );
  await deliver("drop", "dropped.png");
  let src = await waitResult(page);
  assert.equal(await page.locator("#original").getAttribute("alt"), "Original: dropped.png");
  await deliver("paste", "image.png");
  src = await waitResult(page, src);
  assert.equal(await page.locator("#original").getAttribute("alt"), "Original: pasted-image.png");
  assert.equal(colorizeRequests.length, 2);

  // Each problem+json answer of the API gets a human message (answers simulated here).
  const problem = (status, slug, detail, extra = {}) => ({
    status,
    headers: { "content-type": "application/problem+json" },
    body: JSON.stringify({ type: `urn:colorizer:problem:${slug}`, title: slug, status, detail, ...extra }),
  });
  const cases = [
    [problem(413, "body-too-large", "the body is over the limit of 2000000 bytes"), /too big/, /up to 1\.9 MB/],
    [problem(415, "unsupported-media-type", "text/plain"), /not supported/, /JPEG, PNG/],
    [problem(422, "image-too-large", "60000000 pixels is over the limit"), /too many pixels/, /50 megapixels/],
    [problem(422, "invalid-parameter", 'unknown model "gone"', { allowed: ["fixture", "l2"] }), /not available/, /fixture, l2/],
    [problem(504, "deadline-exceeded", "the request did not finish within its deadline of 30000 ms"), /too long/, /30 s/],
    [problem(503, "overloaded", "all sessions are busy", {}), /busy/, /./],
    ["abort", /Could not reach the service/, /./],
  ];
  for (const [answer, title, detail] of cases) {
    await page.route("**/colorize?*", (route) => (answer === "abort" ? route.abort() : route.fulfill(answer)));
    await page.getByRole("button", { name: "Run again" }).click();
    await page.locator("#error-title").filter({ hasText: title }).waitFor({ timeout: 5000 });
    assert.match(await page.locator("#error-detail").textContent(), detail);
    assert.match(await page.locator("#status").textContent(), /Error|failed|busy/);
    await page.unroute("**/colorize?*");
    // (The next click on "Run again" also cancels the automatic retry after the 503.)
  }

  // 401: the page asks for an API key and sends it as a bearer token.
  const auths = [];
  await page.route("**/colorize?*", (route) => {
    const auth = route.request().headers().authorization;
    auths.push(auth);
    if (auth === "Bearer sekrit") return route.continue();
    return route.fulfill(problem(401, "unauthorized", "this endpoint needs an API key"));
  });
  await page.getByRole("button", { name: "Run again" }).click();
  await page.locator("#error-title").filter({ hasText: /API key/ }).waitFor();
  const key = page.getByLabel("API key");
  assert.ok(await key.isVisible(), "the API key field shows after a 401");
  await key.fill("sekrit");
  await page.getByRole("button", { name: "Run again" }).click();
  await waitResult(page, src);
  assert.ok(await page.locator("#error").isHidden());
  assert.equal(auths.at(-1), "Bearer sekrit");
  await page.unroute("**/colorize?*");
  await context.close();
});

test("keyboard: every control is reachable with Tab and named", { timeout: 20_000 }, async () => {
  const { context, page } = await newPage({ viewport: { width: 1280, height: 800 } });
  // Buttons are buttons; every form control has an accessible name.
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll("input:not([type=file]), select, button")]
      .filter((e) => !(e.labels?.length || e.getAttribute("aria-label") || e.textContent.trim()))
      .map((e) => e.id || e.outerHTML.slice(0, 60)),
  );
  assert.deepEqual(unnamed, []);
  const clickableDivs = await page.evaluate(() => [...document.querySelectorAll("div[onclick], span[onclick], a:not([href])")].length);
  assert.equal(clickableDivs, 0);

  const reached = new Set();
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press("Tab");
    reached.add(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim()));
  }
  for (const id of ["pick", "Landscape", "model", "temperature", "format"]) assert.ok(reached.has(id), `Tab reaches ${id}: ${[...reached].join(", ")}`);
  // A focused control shows a focus ring.
  await page.locator("#pick").focus();
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Tab");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none", "focus is visible");
  // Keyboard choice of a sample runs it.
  await page.getByRole("button", { name: "Portrait" }).focus();
  await page.keyboard.press("Enter");
  await waitResult(page, null);
  await context.close();
});

test("phone: 390x844, one column, no horizontal scrolling", { timeout: 20_000 }, async () => {
  const { context, page } = await newPage({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, reducedMotion: "reduce",
  });
  await page.getByRole("button", { name: "Landscape" }).tap();
  await waitResult(page, null);
  // Picking an image brings the results (below the settings on a phone) into view.
  const top = await page.locator("#results").evaluate((e) => e.getBoundingClientRect().top);
  assert.ok(top >= -1 && top < 100, `the results scrolled into view (top at ${top}px)`);
  const img = await page.locator("#result").boundingBox();
  assert.ok(img.y + img.height <= 844, "the colour result is visible without scrolling");
  const s = await resultStats(page);
  assert.deepEqual([s.width, s.height], [384, 256]);
  assert.ok(s.chroma > 3);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal overflow on a phone (${overflow}px)`);
  const controls = await page.locator(".controls").boundingBox();
  const results = await page.locator(".results").boundingBox();
  assert.ok(results.y >= controls.y + controls.height - 1, "results are below the controls on a phone");
  // What a phone shows right after picking a sample (the desktop screenshot has the whole page).
  await page.screenshot({ path: join(SHOTS, "demo-phone.png") });
  await context.close();
});

/** RGB of the result's pixel (x, y). */
async function resultPixelAt(page, x, y) {
  await resultStats(page);
  return page.evaluate(([x, y]) => [...window.__resultCanvas.getImageData(x, y, 1, 1).data.slice(0, 3)], [x, y]);
}

/** Client coordinates of the result's pixel (x, y) (the image is drawn with object-fit: contain). */
function clientPoint(page, x, y) {
  return page.evaluate(([x, y]) => {
    const img = document.getElementById("result");
    const r = img.getBoundingClientRect();
    const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
    const left = r.left + (r.width - img.naturalWidth * s) / 2;
    const top = r.top + (r.height - img.naturalHeight * s) / 2;
    return [left + (x + 0.5) * s, top + (y + 0.5) * s];
  }, [x, y]);
}

test("colour hints: click the result, the colour lands there; recolour, eyedropper, remove", { timeout: 45_000 }, async () => {
  // The hint fixture's colours are exactly the hinted ones, in the 4x4 cells around each hint.
  const { context, page } = await newPage({ viewport: { width: 1280, height: 800 } });
  assert.match(await page.locator("#hints-note").textContent(), /takes no colour hints; pick “hint”/);
  await page.getByLabel("Model").selectOption("hint");
  assert.match(await page.locator("#model-note").textContent(), /Takes colour hints/);
  const W = 240;
  const H = 160;
  await page.locator("#file").setInputFiles({ name: "flat.png", mimeType: "image/png", buffer: grayPng(W, H, () => 128) });
  let src = await waitResult(page);
  const gray = await resultPixelAt(page, 60, 40);
  assert.ok(Math.max(...gray) - Math.min(...gray) <= 2, `no hints, no colour: ${gray}`);

  await page.getByLabel("Hint colour").fill("#c02020");
  await page.mouse.click(...(await clientPoint(page, 60, 40)));
  src = await waitResult(page, src);
  assert.equal(await page.locator("#hints-list li").count(), 1);
  assert.match(await page.locator("#hints-list li").first().textContent(), /Hint 1 at \(60, 40\) #c02020/);
  assert.equal(await page.locator("#meta-hints").textContent(), "1");
  assert.equal(await page.locator(".hint-mark").count(), 1, "a marker shows the hint");
  const [r, g, b] = await resultPixelAt(page, 60, 40);
  assert.ok(r > g + 40 && r > b + 40, `red where the hint was placed: ${[r, g, b]}`);
  const far = await resultPixelAt(page, 200, 130);
  assert.ok(Math.max(...far) - Math.min(...far) <= 2, `gray far from it: ${far}`);

  // Eyedropper: the next click on the result picks its colour instead of placing a hint.
  await page.getByRole("button", { name: "Pick the colour from the result" }).click();
  await page.mouse.click(...(await clientPoint(page, 60, 40)));
  const picked = await page.getByLabel("Hint colour").inputValue();
  assert.notEqual(picked, "#c02020");
  const pr = parseInt(picked.slice(1, 3), 16);
  const pg = parseInt(picked.slice(3, 5), 16);
  assert.ok(pr > pg + 40, `the eyedropper picked the red of the result: ${picked}`);
  assert.equal(await page.locator("#hints-list li").count(), 1, "the eyedropper click placed no hint");

  // Recolour the hint from the list: blue lands at the same place.
  await page.getByLabel("Colour of hint 1").fill("#2040c0");
  src = await waitResult(page, src);
  const blue = await resultPixelAt(page, 60, 40);
  assert.ok(blue[2] > blue[0] + 40, `blue after recolouring: ${blue}`);

  // Remove it: gray again, nothing listed.
  await page.getByRole("button", { name: "Remove hint 1" }).click();
  src = await waitResult(page, src);
  assert.equal(await page.locator("#hints-list li").count(), 0);
  const back = await resultPixelAt(page, 60, 40);
  assert.ok(Math.max(...back) - Math.min(...back) <= 2, `gray once the hint is removed: ${back}`);
  assert.equal(await page.locator("#meta-hints").textContent(), "0");
  await context.close();
});

test("no page errors and no requests outside the service's origin", () => {
  assert.deepEqual(problems, []);
});
