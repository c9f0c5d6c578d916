// colorizer demo page. Plain ES module, no dependencies; talks only to this service, with
// relative URLs (so the page also works behind a path prefix).

const $ = (id) => document.getElementById(id);

const el = {
  drop: $("drop"), pick: $("pick"), file: $("file"), limits: $("limits"),
  model: $("model"), modelNote: $("model-note"),
  tempField: $("temp-field"), temp: $("temperature"), tempOut: $("temp-out"), tempHelp: $("temp-help"), tempReset: $("temp-reset"),
  format: $("format"), keyField: $("key-field"), apiKey: $("api-key"),
  results: $("results"), status: $("status"), pair: $("pair"),
  error: $("error"), errorTitle: $("error-title"), errorDetail: $("error-detail"), retry: $("retry"),
  untrained: $("untrained"), untrainedText: $("untrained-text"),
  original: $("original"), origPlaceholder: $("orig-placeholder"), origSize: $("orig-size"),
  result: $("result"), resultPlaceholder: $("result-placeholder"), resultSize: $("result-size"),
  download: $("download"), rerun: $("rerun"),
  compareSection: $("compare-section"), compare: $("compare"), cmpBefore: $("cmp-before"), cmpAfter: $("cmp-after"), cmpRange: $("cmp-range"),
  requestId: $("request-id"), metaModel: $("meta-model"), metaTemp: $("meta-temp"), metaTotal: $("meta-total"), metaHints: $("meta-hints"),
  resultFrame: $("result-frame"), hintMarks: $("hint-marks"), hintsSection: $("hints-section"), hintsNote: $("hints-note"),
  hintColor: $("hint-color"), eyedropper: $("eyedropper"), hintsClear: $("hints-clear"), hintsList: $("hints-list"),
  timings: $("timings"), version: $("version"),
};

const DEBOUNCE_MS = 300;
const MAX_AUTO_RETRIES = 3;

const state = {
  info: null,
  input: null, // { blob, name, url }
  output: null, // { blob, url, format }
  seq: 0,
  controller: null,
  debounce: 0,
  retryTimer: 0,
  autoRetries: 0,
  hints: [], // [{ x, y, color }] in the input image's pixels (as shown, after EXIF orientation)
};

// ---------------------------------------------------------------- helpers

function bytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n >= 10 << 20 ? 0 : 1)} MB`;
  if (n >= 1 << 10) return `${Math.round(n / 1024)} KB`;
  return `${n} bytes`;
}

function megapixels(n) {
  return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} megapixels`;
}

function stem(name) {
  const base = (name || "image").split(/[\\/]/).pop();
  const dot = base.lastIndexOf(".");
  return (dot > 0 ? base.slice(0, dot) : base) || "image";
}

function setStatus(text) {
  el.status.textContent = text;
}

function currentModel() {
  if (!state.info) return null;
  return state.info.models.find((m) => m.name === el.model.value) || null;
}

function temperature() {
  return Number(el.temp.value);
}

/** Parses a Server-Timing header into [{name, dur, desc}]. */
export function parseServerTiming(header) {
  if (!header) return [];
  return header.split(",").map((part) => {
    const [name, ...params] = part.trim().split(";");
    const entry = { name: name.trim(), dur: null, desc: "" };
    for (const p of params) {
      const [k, v = ""] = p.trim().split("=");
      if (k === "dur") entry.dur = Number(v);
      if (k === "desc") entry.desc = v.replace(/^"|"$/g, "");
    }
    return entry;
  }).filter((e) => e.name);
}

// ---------------------------------------------------------------- errors

function hideError() {
  el.error.hidden = true;
  el.retry.hidden = true;
  clearTimeout(state.retryTimer);
}

function showError(title, detail = "", { retry = false } = {}) {
  el.errorTitle.textContent = title;
  el.errorDetail.textContent = detail;
  el.errorDetail.hidden = !detail;
  el.retry.hidden = !retry;
  el.error.hidden = false;
}

/** A human message for a problem+json answer (or a bare status). */
function describeProblem(status, problem, headers) {
  const info = state.info || {};
  const slug = String(problem?.type || "").split(":").pop();
  const detail = problem?.detail || "";
  const retryAfter = Math.max(1, Number(headers?.get("retry-after")) || 1);
  switch (status) {
    case 400:
      if (slug === "not-an-image" || !slug) {
        return { title: "This file is not an image the service can read.", detail: "Use a JPEG, PNG, WebP, GIF, BMP or TIFF picture." + (detail ? ` The service said: ${detail}.` : "") };
      }
      return { title: "The request was not understood.", detail };
    case 401:
      el.keyField.hidden = false;
      return { title: "This service needs an API key.", detail: "Enter your key in the API key field and try again." };
    case 413:
      return {
        title: "The file is too big.",
        detail: info.max_body_bytes ? `The service accepts files up to ${bytes(info.max_body_bytes)}. Resize or compress the picture and try again.` : detail,
      };
    case 415:
      return { title: "This type of file is not supported.", detail: "Use a JPEG, PNG, WebP, GIF, BMP or TIFF picture." };
    case 422:
      if (slug === "image-too-large") {
        const lim = info.limits || {};
        const limits = [lim.max_pixels && `${megapixels(lim.max_pixels)}`, lim.max_side && `${lim.max_side} pixels a side`].filter(Boolean).join(" and ");
        return { title: "The picture has too many pixels.", detail: (limits ? `The service accepts up to ${limits}. ` : "") + detail };
      }
      if (/hint/i.test(detail)) {
        return { title: "A colour hint was not accepted.", detail };
      }
      if (/model/i.test(detail)) {
        loadInfo(); // the list of models may have changed
        return { title: "That model is not available.", detail: problem?.allowed ? `Available: ${problem.allowed.join(", ")}.` : detail };
      }
      return { title: "A setting was not accepted.", detail };
    case 503:
      if (slug === "not-ready") {
        return { title: `The service is starting up; retrying in ${retryAfter} s.`, detail, retryAfter };
      }
      return { title: `The service is busy; retrying in ${retryAfter} s.`, detail: "Many pictures are being colourised right now.", retryAfter };
    case 504:
      return {
        title: "The picture took too long to colourise.",
        detail: (info.deadline_ms ? `The limit is ${(info.deadline_ms / 1000).toFixed(0)} s. ` : "") + "Try a smaller picture or try again later.",
      };
    default:
      return { title: problem?.title ? `${problem.title} (HTTP ${status})` : `The service answered HTTP ${status}.`, detail };
  }
}

// ---------------------------------------------------------------- /info and the model picker

async function loadInfo() {
  try {
    const resp = await fetch("info", { headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const info = await resp.json();
    applyInfo(info);
    if (!info.ready) {
      setStatus("The service is starting up…");
      setTimeout(loadInfo, 1000);
    }
  } catch (e) {
    showError("Could not reach the service.", `GET /info failed (${e.message}); retrying in 3 s.`);
    setTimeout(loadInfo, 3000);
  }
}

function applyInfo(info) {
  const first = !state.info;
  const previous = el.model.value;
  state.info = info;
  el.version.textContent = info.version ? `v${info.version}` : "";
  el.keyField.hidden = !info.auth_required;

  el.model.replaceChildren();
  for (const m of info.models || []) {
    const opt = document.createElement("option");
    opt.value = m.name;
    const tags = [m.name === info.default_model ? "default" : "", m.trained === false ? "untrained" : ""].filter(Boolean);
    opt.textContent = tags.length ? `${m.name} (${tags.join(", ")})` : m.name;
    el.model.append(opt);
  }
  applyFormats(info.output_formats || []);

  const names = (info.models || []).map((m) => m.name);
  el.model.value = names.includes(previous) && !first ? previous : info.default_model || names[0] || "";
  el.model.disabled = names.length === 0;

  const lim = [];
  if (info.max_body_bytes) lim.push(`up to ${bytes(info.max_body_bytes)}`);
  if (info.limits?.max_pixels) lim.push(megapixels(info.limits.max_pixels));
  el.limits.textContent = lim.length ? `JPEG, PNG, WebP, GIF, BMP or TIFF, ${lim.join(", ")}.` : "";
  if (first && !state.input) hideError();
  applyModel({ resetTemperature: first });
}

// The output formats are the service's (/info), in its order; the choice is kept across reloads.
function applyFormats(formats) {
  const chosen = el.format.value;
  el.format.replaceChildren();
  for (const f of formats) {
    const opt = document.createElement("option");
    opt.value = f.name;
    opt.textContent = f.lossless ? `${f.name.toUpperCase()} (lossless)` : f.name.toUpperCase();
    el.format.append(opt);
  }
  el.format.value = formats.some((f) => f.name === chosen) ? chosen : formats[0]?.name || "";
}

const formatInfo = (name) => (state.info?.output_formats || []).find((f) => f.name === name);

function applyModel({ resetTemperature = true } = {}) {
  const m = currentModel();
  if (!m) {
    el.modelNote.textContent = "No model is loaded.";
    return;
  }
  const ab = m.output === "ab";
  el.temp.disabled = ab;
  el.tempReset.disabled = ab;
  if (resetTemperature && !ab && m.default_temperature) el.temp.value = String(m.default_temperature);
  updateTempOut();
  el.tempHelp.firstChild.textContent = ab
    ? "This model predicts colours directly, so temperature does not apply to it. "
    : "Lower is more vivid (the most likely colour), 1 is the average of all plausible colours (safe, duller). ";

  const parts = [];
  if (m.description) parts.push(/[.!?]$/.test(m.description.trim()) ? m.description.trim() : `${m.description.trim()}.`);
  const size = m.min_inference_size && m.min_inference_size < m.inference_size
    ? `${m.min_inference_size}-${m.inference_size} px (a photo in between at its own size)`
    : `${m.inference_size || "?"} px`;
  const grid = m.output_scale ? `, colours on a grid 1/${m.output_scale} of that` : "";
  parts.push(`Output: ${ab ? "colours (ab) directly" : "313 colour bins, decoded at the chosen temperature"}; works at ${size}${grid}.`);
  if (!ab && m.default_temperature) parts.push(`Default temperature ${m.default_temperature}.`);
  if (m.hints) parts.push("Takes colour hints.");
  el.modelNote.textContent = parts.join(" ");
  renderHints();
  if (m.trained === false) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "untrained";
    el.modelNote.prepend(badge, " ");
    el.untrainedText.textContent = `The model “${m.name}” has not been trained: its colours are random and say nothing about the method. It is here to test the service.`;
    el.untrained.hidden = false;
  } else {
    el.untrained.hidden = true;
  }
}

function updateTempOut() {
  const m = currentModel();
  if (m && m.output === "ab") {
    el.tempOut.textContent = "n/a";
    el.temp.setAttribute("aria-valuetext", "not used by this model");
    return;
  }
  const t = temperature();
  const word = t <= 0.25 ? "very vivid" : t <= 0.5 ? "vivid" : t < 0.85 ? "balanced" : "safe";
  el.tempOut.textContent = t.toFixed(2);
  el.temp.setAttribute("aria-valuetext", `${t.toFixed(2)}, ${word}`);
}

// ---------------------------------------------------------------- input

function setInput(blob, name) {
  if (state.input?.url) URL.revokeObjectURL(state.input.url);
  const url = URL.createObjectURL(blob);
  state.input = { blob, name, url };
  state.autoRetries = 0;
  state.hints = [];
  setEyedropper(false);
  renderHints();
  hideError();
  clearOutput();
  for (const b of document.querySelectorAll(".sample")) b.setAttribute("aria-pressed", String(b.dataset.name === name && blob.fromSample === true));

  el.original.hidden = false;
  el.origPlaceholder.hidden = true;
  el.original.alt = `Original: ${name}`;
  el.original.classList.add("gray");
  el.origSize.textContent = "";
  el.original.onload = () => {
    const w = el.original.naturalWidth;
    const h = el.original.naturalHeight;
    el.origSize.textContent = `${w} × ${h}`;
    // Both panes take the picture's shape.
    el.pair.style.setProperty("--ar", `${w} / ${h}`);
  };
  el.original.onerror = () => {
    el.original.hidden = true;
    el.origPlaceholder.hidden = false;
    el.origPlaceholder.textContent = "No preview (this browser cannot show this file)";
  };
  el.original.src = url;
  el.cmpBefore.src = url;
  colorize();
  // On a phone the results sit below the settings: bring them into view.
  if (window.matchMedia("(max-width: 52rem)").matches) {
    const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    el.results.scrollIntoView({ block: "start", behavior: reduce ? "auto" : "smooth" });
  }
}

function clearOutput() {
  if (state.output?.url) URL.revokeObjectURL(state.output.url);
  state.output = null;
  el.result.hidden = true;
  el.result.removeAttribute("src");
  el.resultPlaceholder.hidden = false;
  el.resultPlaceholder.textContent = "Colour result";
  el.resultSize.textContent = "";
  el.download.disabled = true;
  el.compareSection.hidden = true;
}

function takeFile(file, name) {
  if (!file) return;
  const max = state.info?.max_body_bytes;
  if (max && file.size > max) {
    showError("The file is too big.", `${name || file.name} is ${bytes(file.size)}; the service accepts files up to ${bytes(max)}. Resize or compress it and try again.`);
    setStatus("Nothing sent: the file is over the size limit.");
    return;
  }
  if (file.size === 0) {
    showError("The file is empty.", "Choose a picture file.");
    return;
  }
  setInput(file, name || file.name || "image");
}

el.pick.addEventListener("click", () => el.file.click());
el.file.addEventListener("change", () => {
  const f = el.file.files?.[0];
  if (f) takeFile(f, f.name);
  el.file.value = ""; // choosing the same file again still fires "change"
});

// Drag and drop: anywhere on the page, highlighted on the drop zone.
let dragDepth = 0;
document.addEventListener("dragenter", (e) => {
  if (![...(e.dataTransfer?.types || [])].includes("Files")) return;
  dragDepth++;
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) document.body.classList.remove("dragging");
});
document.addEventListener("dragover", (e) => {
  e.preventDefault();
  if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
});
document.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  document.body.classList.remove("dragging");
  const f = e.dataTransfer?.files?.[0];
  if (f) takeFile(f, f.name);
});

// Paste an image (or an image file) from the clipboard.
document.addEventListener("paste", (e) => {
  const items = [...(e.clipboardData?.items || [])];
  const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/")) || items.find((i) => i.kind === "file");
  const f = item?.getAsFile();
  if (!f) return;
  e.preventDefault();
  const ext = (f.type.split("/")[1] || "png").replace("jpeg", "jpg");
  takeFile(f, f.name && f.name !== "image.png" ? f.name : `pasted-image.${ext}`);
});

for (const b of document.querySelectorAll(".sample")) {
  b.setAttribute("aria-pressed", "false");
  b.addEventListener("click", async () => {
    try {
      const resp = await fetch(b.dataset.src);
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const blob = await resp.blob();
      blob.fromSample = true;
      takeFile(blob, b.dataset.name);
    } catch (e) {
      showError("Could not load the sample.", e.message);
    }
  });
}

// ---------------------------------------------------------------- settings

el.model.addEventListener("change", () => {
  applyModel({ resetTemperature: true });
  colorize();
});
el.temp.addEventListener("input", () => {
  updateTempOut();
  clearTimeout(state.debounce);
  state.debounce = setTimeout(colorize, DEBOUNCE_MS);
});
el.tempReset.addEventListener("click", () => {
  const m = currentModel();
  if (!m?.default_temperature) return;
  el.temp.value = String(m.default_temperature);
  updateTempOut();
  colorize();
});
el.format.addEventListener("change", () => colorize());
el.apiKey.addEventListener("change", () => {
  if (state.input && !state.output) colorize();
});
el.retry.addEventListener("click", () => {
  state.autoRetries = 0;
  colorize();
});
el.rerun.addEventListener("click", () => colorize());

// ---------------------------------------------------------------- the request

function setBusy(busy) {
  el.results.setAttribute("aria-busy", String(busy));
  el.rerun.disabled = busy || !state.input;
}

async function colorize() {
  clearTimeout(state.debounce);
  clearTimeout(state.retryTimer);
  const input = state.input;
  if (!input) return;
  const model = currentModel();
  const format = el.format.value;
  const params = new URLSearchParams();
  if (format) params.set("format", format);
  if (model) params.set("model", model.name);
  const useTemp = model && model.output !== "ab";
  if (useTemp) params.set("temperature", temperature().toFixed(2));

  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  const seq = ++state.seq;

  const hints = model?.hints ? state.hints : [];
  const mediaType = formatInfo(format)?.media_type;
  const headers = mediaType ? { Accept: mediaType } : {};
  let body = input.blob;
  if (hints.length) {
    // multipart: the image and the hints part (the browser sets the Content-Type with its boundary)
    body = new FormData();
    body.append("image", input.blob, input.name);
    body.append("hints", JSON.stringify(hints));
  } else {
    headers["Content-Type"] = input.blob.type && input.blob.type.startsWith("image/") ? input.blob.type : "application/octet-stream";
  }
  const key = el.apiKey.value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;

  setBusy(true);
  const hintText = hints.length ? ` and ${hints.length} colour hint${hints.length > 1 ? "s" : ""}` : "";
  setStatus(`Colourising ${input.name}${model ? ` with ${model.name}` : ""}${useTemp ? ` at temperature ${temperature().toFixed(2)}` : ""}${hintText}…`);
  const t0 = performance.now();
  let resp;
  try {
    resp = await fetch(`colorize?${params}`, { method: "POST", body, headers, signal: controller.signal });
  } catch (e) {
    if (controller.signal.aborted) return;
    setBusy(false);
    showError("Could not reach the service.", `${e.message}. Check your connection and try again.`, { retry: true });
    setStatus("The request failed.");
    return;
  }
  if (seq !== state.seq) return;

  if (!resp.ok) {
    let problem = null;
    try {
      problem = await resp.json();
    } catch {
      problem = null;
    }
    if (seq !== state.seq) return;
    setBusy(false);
    const msg = describeProblem(resp.status, problem, resp.headers);
    const rid = resp.headers.get("x-request-id");
    if (rid) el.requestId.textContent = rid;
    if (msg.retryAfter && state.autoRetries < MAX_AUTO_RETRIES) {
      state.autoRetries++;
      showError(msg.title, msg.detail, { retry: true });
      setStatus(msg.title);
      let left = msg.retryAfter;
      const tick = () => {
        left--;
        if (left <= 0) return colorize();
        el.errorTitle.textContent = msg.title.replace(/\d+ s\./, `${left} s.`);
        state.retryTimer = setTimeout(tick, 1000);
      };
      state.retryTimer = setTimeout(tick, 1000);
      return;
    }
    const title = msg.retryAfter ? msg.title.replace(/; retrying in \d+ s\./, ". Please try again in a moment.") : msg.title;
    showError(title, msg.detail, { retry: Boolean(msg.retryAfter) || resp.status >= 500 });
    setStatus(`Error: ${title}`);
    if (state.output) {
      el.resultPlaceholder.hidden = true;
    }
    return;
  }

  let blob;
  try {
    blob = await resp.blob();
  } catch (e) {
    if (controller.signal.aborted) return;
    setBusy(false);
    showError("The answer was cut off.", e.message, { retry: true });
    return;
  }
  if (seq !== state.seq) return;
  const total = performance.now() - t0;
  state.autoRetries = 0;
  hideError();
  showOutput(blob, format, resp.headers, total, model);
}

function showOutput(blob, format, headers, total, model) {
  if (state.output?.url) URL.revokeObjectURL(state.output.url);
  const url = URL.createObjectURL(blob);
  state.output = { blob, url, format };
  const name = state.input.name;
  const usedModel = headers.get("x-colorizer-model") || model?.name || "?";
  const usedTemp = headers.get("x-colorizer-temperature");

  el.result.onload = () => {
    const w = el.result.naturalWidth;
    const h = el.result.naturalHeight;
    el.resultSize.textContent = `${w} × ${h}`;
    el.compare.style.setProperty("--ar", `${w} / ${h}`);
    el.compare.style.setProperty("--arn", String(w / h));
    el.compare.style.setProperty("--maxw", `${Math.max(2 * w, 320)}px`);
    el.compareSection.hidden = false;
    placeHintMarks();
    setBusy(false);
    setStatus(`Done: ${name} colourised in ${Math.round(total)} ms.`);
  };
  el.result.onerror = () => {
    setBusy(false);
    el.result.hidden = true;
    el.resultPlaceholder.hidden = false;
    el.resultPlaceholder.textContent = "This browser cannot show the result; download it instead.";
    setStatus(`Done: ${name} colourised in ${Math.round(total)} ms (no preview).`);
  };
  el.result.alt = `Colour version of ${name}`;
  el.result.hidden = false;
  el.resultPlaceholder.hidden = true;
  el.result.src = url;
  el.cmpAfter.src = url;
  el.download.disabled = false;

  el.requestId.textContent = headers.get("x-request-id") || "–";
  el.metaModel.textContent = usedModel + (model?.trained === false ? " (untrained)" : "");
  el.metaTemp.textContent = model?.output === "ab" ? "not used by this model" : usedTemp || "–";
  el.metaTotal.textContent = `${Math.round(total)} ms (${bytes(blob.size)} ${format.toUpperCase()})`;
  el.metaHints.textContent = headers.get("x-colorizer-hints") ?? "–";
  renderTimings(parseServerTiming(headers.get("server-timing")), total);
}

function renderTimings(entries, total) {
  const body = document.createElement("tbody");
  const known = entries.filter((e) => Number.isFinite(e.dur));
  if (!known.length) {
    body.innerHTML = '<tr><td class="muted">The service sent no timings.</td></tr>';
    el.timings.replaceChildren(body);
    return;
  }
  const server = known.reduce((s, e) => s + e.dur, 0);
  const max = Math.max(...known.map((e) => e.dur), 1e-6);
  const row = (label, ms, frac, cls = "") => {
    const tr = document.createElement("tr");
    if (cls) tr.className = cls;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = label;
    const td = document.createElement("td");
    td.className = "ms";
    td.textContent = ms.toFixed(ms < 10 ? 2 : 1);
    const tdBar = document.createElement("td");
    if (frac !== null) {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${Math.max(0.5, frac * 100).toFixed(1)}%`;
      tdBar.append(bar);
    }
    tr.append(th, td, tdBar);
    body.append(tr);
  };
  for (const e of known) row(e.desc || e.name, e.dur, e.dur / max);
  row("server total", server, null, "total");
  row("round trip", total, null);
  el.timings.replaceChildren(body);
}

el.download.addEventListener("click", () => {
  if (!state.output || !state.input) return;
  const a = document.createElement("a");
  a.href = state.output.url;
  a.download = `${stem(state.input.name)}-colorized.${formatInfo(state.output.format)?.extension || "png"}`;
  document.body.append(a);
  a.click();
  a.remove();
  setStatus(`Saved as ${a.download}.`);
});

// ---------------------------------------------------------------- colour hints

/** The picture's box inside the result element (object-fit: contain) in client pixels. */
function resultBox() {
  const r = el.result.getBoundingClientRect();
  const w = el.result.naturalWidth;
  const h = el.result.naturalHeight;
  if (!w || !h || !r.width || !r.height) return null;
  const scale = Math.min(r.width / w, r.height / h);
  return { left: r.left + (r.width - w * scale) / 2, top: r.top + (r.height - h * scale) / 2, scale, w, h };
}

function toHex(r, g, b) {
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

/** The colour of the result's pixel (x, y). */
function resultPixel(x, y) {
  const c = document.createElement("canvas");
  c.width = 1;
  c.height = 1;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(el.result, x, y, 1, 1, 0, 0, 1, 1);
  const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
  return toHex(r, g, b);
}

function setEyedropper(on) {
  el.eyedropper.setAttribute("aria-pressed", String(on));
  el.eyedropper.textContent = on ? "Click the result to pick its colour…" : "Pick the colour from the result";
}

function hintsApply() {
  return Boolean(currentModel()?.hints);
}

function renderHints() {
  const m = currentModel();
  const on = hintsApply();
  el.hintsSection.dataset.off = String(!on);
  const others = (state.info?.models || []).filter((x) => x.hints).map((x) => x.name);
  el.hintsNote.textContent = on
    ? "Click the colour result to tell the model a colour there; it spreads the colour over that region. Change a hint's colour or remove it below."
    : `The model “${m?.name ?? "?"}” takes no colour hints${others.length ? `; pick ${others.map((n) => `“${n}”`).join(" or ")} to use them` : ""}.`;
  el.result.classList.toggle("hinting", on);
  el.hintsClear.disabled = state.hints.length === 0;
  el.hintsList.replaceChildren(
    ...state.hints.map((h, i) => {
      const li = document.createElement("li");
      const color = document.createElement("input");
      color.type = "color";
      color.value = h.color;
      color.setAttribute("aria-label", `Colour of hint ${i + 1}`);
      color.addEventListener("change", () => {
        h.color = color.value;
        renderHints();
        colorize();
      });
      const text = document.createElement("span");
      text.textContent = `Hint ${i + 1} at (${h.x}, ${h.y}) ${h.color}${on ? "" : " (not used by this model)"}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove hint ${i + 1}`);
      remove.addEventListener("click", () => {
        state.hints.splice(i, 1);
        renderHints();
        colorize();
      });
      li.append(color, text, remove);
      return li;
    }),
  );
  placeHintMarks();
}

/** Markers over the result at each hint, numbered as in the list. */
function placeHintMarks() {
  const box = el.result.hidden ? null : resultBox();
  if (!box || !hintsApply()) {
    el.hintMarks.replaceChildren();
    return;
  }
  const frame = el.resultFrame.getBoundingClientRect();
  Object.assign(el.hintMarks.style, {
    left: `${box.left - frame.left}px`, top: `${box.top - frame.top}px`, width: `${box.w * box.scale}px`, height: `${box.h * box.scale}px`,
  });
  el.hintMarks.replaceChildren(
    ...state.hints.map((h, i) => {
      const mark = document.createElement("div");
      mark.className = "hint-mark";
      mark.style.left = `${((h.x + 0.5) / box.w) * 100}%`;
      mark.style.top = `${((h.y + 0.5) / box.h) * 100}%`;
      mark.style.background = h.color;
      const n = document.createElement("span");
      n.textContent = String(i + 1);
      mark.append(n);
      return mark;
    }),
  );
}

el.result.addEventListener("click", (e) => {
  const box = resultBox();
  if (!box || !state.output) return;
  const x = Math.floor((e.clientX - box.left) / box.scale);
  const y = Math.floor((e.clientY - box.top) / box.scale);
  if (x < 0 || y < 0 || x >= box.w || y >= box.h) return;
  if (el.eyedropper.getAttribute("aria-pressed") === "true") {
    el.hintColor.value = resultPixel(x, y);
    setEyedropper(false);
    setStatus(`Hint colour set to ${el.hintColor.value} from (${x}, ${y}).`);
    return;
  }
  if (!hintsApply()) {
    setStatus(el.hintsNote.textContent);
    return;
  }
  const max = 64;
  if (state.hints.length >= max) {
    showError("Too many hints.", `The service takes at most ${max}; remove some first.`);
    return;
  }
  state.hints.push({ x, y, color: el.hintColor.value });
  renderHints();
  clearTimeout(state.debounce);
  state.debounce = setTimeout(colorize, DEBOUNCE_MS);
});
el.eyedropper.addEventListener("click", () => setEyedropper(el.eyedropper.getAttribute("aria-pressed") !== "true"));
el.hintsClear.addEventListener("click", () => {
  state.hints = [];
  renderHints();
  colorize();
});
window.addEventListener("resize", placeHintMarks);

// ---------------------------------------------------------------- before/after comparison

function setDivider() {
  const v = Number(el.cmpRange.value);
  el.compare.style.setProperty("--pos", `${v}%`);
  el.cmpRange.setAttribute("aria-valuetext", `${v}% original, ${100 - v}% colour`);
}
el.cmpRange.addEventListener("input", setDivider);
setDivider();

// ---------------------------------------------------------------- start

el.model.innerHTML = "<option>loading…</option>";
loadInfo();
