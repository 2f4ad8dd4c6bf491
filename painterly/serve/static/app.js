// painterly page: pick a photo, a style (or a painting), adjust, paint on the server (or on this device).
"use strict";

const $ = (id) => document.getElementById(id);
const API = "/api/v1";
const state = {
  config: null, styles: [], photo: null, photoName: "photo", painting: null, mode: "gallery",
  styleA: null, styleB: null, mixOn: false, result: null, resultName: "", controller: null, timer: null,
  retries: 0, pending: null,
};

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

function showError(message) {
  $("alert-text").textContent = message;
  $("alert").hidden = false;
}
function clearError() { $("alert").hidden = true; }
function setStatus(text) { $("status").textContent = text; }
function pct(input) { return Number(input.value) / 100; }
function mib(bytes) { return `${(bytes / 1048576).toFixed(bytes < 1048576 ? 2 : 0)} MiB`; }

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`;
}

function setBusy(on, text) {
  $("busy").hidden = !on;
  $("paint").disabled = on || !canPaint();
  if (!on) { clearInterval(state.timer); state.timer = null; return; }
  const start = performance.now();
  const label = text || "Painting";
  $("busy-text").textContent = `${label}…`;
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    $("busy-text").textContent = `${label}… ${((performance.now() - start) / 1000).toFixed(1)} s`;
  }, 100);
}

function canPaint() {
  if (!state.photo) return false;
  return state.mode === "gallery" ? Boolean(state.styleA) : Boolean(state.painting);
}
function refreshButton() { $("paint").disabled = !canPaint() || !$("busy").hidden; }

// ---------------------------------------------------------------------------------------------
// Photo and painting input (click, drop, paste)
// ---------------------------------------------------------------------------------------------

function acceptFile(file, kind) {
  if (!file) return;
  if (!file.type.startsWith("image/") && file.type !== "") {
    showError(`"${file.name}" is not an image.`);
    return;
  }
  const limit = state.config ? state.config.max_upload_bytes : Infinity;
  if (file.size > limit) {
    showError(`"${file.name}" is ${mib(file.size)}; this server accepts up to ${mib(limit)}.`);
    return;
  }
  clearError();
  if (kind === "photo") setPhoto(file, file.name.replace(/\.[^.]+$/, ""));
  else setPainting(file);
}

// Size the before/after frame to fit the viewer (small photos are shown enlarged, up to 4x).
function fitFrame() {
  const img = $("before");
  if (!img.naturalWidth) return;
  const viewer = $("viewer");
  const maxW = viewer.clientWidth - 24;
  const maxH = Math.max(280, Math.min(window.innerHeight * 0.72, 900));
  const scale = Math.min(4, maxW / img.naturalWidth, maxH / img.naturalHeight);
  $("frame").style.width = `${Math.round(img.naturalWidth * scale)}px`;
  $("frame").style.height = `${Math.round(img.naturalHeight * scale)}px`;
}

function setPhoto(blob, name) {
  state.photo = blob;
  state.photoName = name || "photo";
  const url = URL.createObjectURL(blob);
  $("photo-thumb").src = url;
  $("photo-thumb").hidden = false;
  $("before").src = url;
  $("before").hidden = false;
  $("empty").hidden = true;
  showResult(null);
  refreshButton();
  schedulePaint();
}

function setPainting(blob) {
  state.painting = blob;
  $("painting-thumb").src = URL.createObjectURL(blob);
  $("painting-thumb").hidden = false;
  refreshButton();
  schedulePaint();
}

function wireDrop(zoneId, inputId, kind) {
  const zone = $(zoneId);
  const input = $(inputId);
  input.addEventListener("change", () => acceptFile(input.files[0], kind));
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    acceptFile(e.dataTransfer.files[0], kind);
  });
}

async function loadSample(name) {
  try {
    const response = await fetch(`${API}/samples/${encodeURIComponent(name)}`);
    if (!response.ok) throw new Error(await errorText(response));
    setPhoto(await response.blob(), name);
  } catch (err) {
    showError(`Could not load the sample photo: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Styles
// ---------------------------------------------------------------------------------------------

function renderGallery() {
  const gallery = $("gallery");
  gallery.textContent = "";
  for (const style of state.styles) {
    const card = document.createElement("button");
    card.className = "style-card";
    card.type = "button";
    card.setAttribute("role", "option");
    card.dataset.style = style.name;
    card.title = `${style.title}, ${style.artist}`;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.alt = "";
    img.src = style.thumbnail;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = style.title.replace(/\s*\([^)]*\)\s*$/, "");
    const artist = document.createElement("span");
    artist.className = "artist";
    artist.textContent = style.artist;
    card.append(img, name, artist);
    card.addEventListener("click", () => chooseStyle(style.name));
    gallery.append(card);
  }
  markSelection();
}

function titleOf(name) {
  const s = state.styles.find((x) => x.name === name);
  return s ? s.title.replace(/\s*\([^)]*\)\s*$/, "") : name;
}

function chooseStyle(name) {
  if (state.mixOn && state.styleA && name !== state.styleA) state.styleB = name;
  else { state.styleA = name; if (state.styleB === name) state.styleB = null; }
  markSelection();
  refreshButton();
  schedulePaint(0);
}

function markSelection() {
  for (const card of document.querySelectorAll(".style-card")) {
    card.setAttribute("aria-selected", String(card.dataset.style === state.styleA));
    card.classList.toggle("second", state.mixOn && card.dataset.style === state.styleB);
  }
  $("mix-a").textContent = state.styleA ? `A: ${titleOf(state.styleA)}` : "A: pick one";
  $("mix-b").textContent = state.styleB ? `B: ${titleOf(state.styleB)}` : "B: pick one";
}

function setMode(mode) {
  state.mode = mode;
  for (const tab of document.querySelectorAll(".tabs button")) tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
  $("mode-gallery").hidden = mode !== "gallery";
  $("mode-painting").hidden = mode !== "painting";
  $("strength-row").hidden = mode !== "gallery";
  $("where-row").hidden = mode !== "gallery" || !deviceAvailable();
  refreshButton();
}

// ---------------------------------------------------------------------------------------------
// Painting: on the server, or on this device
// ---------------------------------------------------------------------------------------------

function schedulePaint(delay = 250) {
  if (!canPaint()) return;
  clearTimeout(state.pending);
  state.pending = setTimeout(() => paint(), delay);
}

function deviceAvailable() {
  return Boolean(state.config && state.config.device && state.config.device.available && window.PainterlyDevice);
}
function runOnDevice() {
  return state.mode === "gallery" && deviceAvailable() && document.querySelector("input[name=where]:checked").value === "device";
}

function buildForm() {
  const form = new FormData();
  form.append("photo", state.photo, `${state.photoName}.img`);
  form.append("size", $("size").value);
  form.append("preserve_color", $("color").value);
  form.append("format", $("format").value);
  if (state.mode === "gallery") {
    form.append("style", state.styleA);
    if (state.mixOn && state.styleB) {
      form.append("style2", state.styleB);
      form.append("mix", String(pct($("mix"))));
    }
    form.append("strength", String(pct($("strength"))));
    return { url: `${API}/stylize`, form, name: state.mixOn && state.styleB ? `${state.styleA}+${state.styleB}` : state.styleA };
  }
  form.append("painting", state.painting, "painting.img");
  form.append("alpha", String(pct($("alpha"))));
  return { url: `${API}/transfer`, form, name: "transfer" };
}

async function paint() {
  if (!canPaint()) return;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  clearError();
  if (runOnDevice()) return paintOnDevice(controller);
  const { url, form, name } = buildForm();
  setBusy(true, state.retries ? "Retrying" : "Painting");
  setStatus("Painting on the server…");
  const started = performance.now();
  try {
    const response = await fetch(url, { method: "POST", body: form, signal: controller.signal });
    if (response.status === 429 || response.status === 503) {
      const wait = Math.min(30, Number(response.headers.get("Retry-After")) || 2);
      const message = await errorText(response);
      if (state.retries < 3) {
        state.retries += 1;
        setBusy(false);
        setStatus(`The server is busy; trying again in ${wait} s…`);
        state.pending = setTimeout(() => { if (state.controller === controller) paint(); }, wait * 1000);
        return;
      }
      throw new Error(message);
    }
    if (!response.ok) throw new Error(await errorText(response));
    const blob = await response.blob();
    const seconds = (performance.now() - started) / 1000;
    const serverSeconds = Number(response.headers.get("X-Painterly-Seconds"));
    const ext = $("format").value === "png" ? "png" : "jpg";
    showResult(blob, `painterly-${state.photoName}-${name}.${ext}`);
    setStatus(`Painted on the server in ${(serverSeconds || seconds).toFixed(1)} s. Drag across the picture to compare.`);
    state.retries = 0;
  } catch (err) {
    if (err.name === "AbortError") return;
    state.retries = 0;
    showError(err.message.startsWith("the server") ? err.message : `Could not paint: ${err.message}`);
    setStatus("Something went wrong; see the message above.");
  } finally {
    if (state.controller === controller) { state.controller = null; setBusy(false); refreshButton(); }
  }
}

async function paintOnDevice(controller) {
  setBusy(true, "Painting on this device");
  setStatus("Painting on this device (the first time, the model is loaded first)…");
  const started = performance.now();
  try {
    const weights = {};
    const mix = state.mixOn && state.styleB ? pct($("mix")) : 0;
    weights[state.styleA] = 1 - mix;
    if (mix > 0) weights[state.styleB] = (weights[state.styleB] || 0) + mix;
    const blob = await window.PainterlyDevice.run(state.config.device, {
      photo: state.photo, weights, strength: pct($("strength")), size: Number($("size").value),
      format: $("format").value,
    });
    if (state.controller !== controller) return;
    const ext = $("format").value === "png" ? "png" : "jpg";
    showResult(blob, `painterly-${state.photoName}-${state.styleA}.${ext}`);
    setStatus(`Painted on this device in ${((performance.now() - started) / 1000).toFixed(1)} s; the photo never left it.`);
  } catch (err) {
    showError(`Could not paint on this device: ${err.message || err}. Try "the server".`);
  } finally {
    if (state.controller === controller) { state.controller = null; setBusy(false); refreshButton(); }
  }
}

function showResult(blob, filename) {
  if (state.result) URL.revokeObjectURL(state.result);
  state.result = blob ? URL.createObjectURL(blob) : null;
  const has = Boolean(blob);
  $("after").hidden = !has;
  if (has) $("after").src = state.result;
  for (const id of ["handle", "compare", "tag-before", "tag-after"]) $(id).hidden = !has;
  const link = $("download");
  link.setAttribute("aria-disabled", String(!has));
  if (has) { link.href = state.result; link.download = filename; } else { link.removeAttribute("href"); }
  if (!has && state.photo) setStatus(canPaint() ? "Ready." : "Pick a style to begin.");
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

function wireControls() {
  wireDrop("photo-drop", "photo-input", "photo");
  wireDrop("painting-drop", "painting-input", "painting");
  document.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData ? e.clipboardData.files : [])].find((f) => f.type.startsWith("image/"));
    if (file) acceptFile(file, state.mode === "painting" && state.photo ? "painting" : "photo");
  });
  for (const tab of document.querySelectorAll(".tabs button")) tab.addEventListener("click", () => { setMode(tab.dataset.mode); schedulePaint(); });
  $("mix-toggle").addEventListener("change", () => {
    state.mixOn = $("mix-toggle").checked;
    $("mix-row").hidden = !state.mixOn;
    markSelection();
    if (state.styleB) schedulePaint();
  });
  for (const [id, out] of [["strength", "strength-out"], ["alpha", "alpha-out"]]) {
    $(id).addEventListener("input", () => { $(out).textContent = `${$(id).value}%`; });
  }
  for (const id of ["strength", "alpha", "mix", "size", "color", "format"]) $(id).addEventListener("change", () => schedulePaint());
  for (const radio of document.querySelectorAll("input[name=where]")) radio.addEventListener("change", () => schedulePaint());
  $("before").addEventListener("load", () => { $("before").hidden = false; fitFrame(); });
  $("before").addEventListener("error", () => { $("before").hidden = true; });  // the server may still read it
  window.addEventListener("resize", fitFrame);
  $("compare").addEventListener("input", () => $("viewer").style.setProperty("--pos", `${$("compare").value}%`));
  $("paint").addEventListener("click", () => { state.retries = 0; paint(); });
  $("alert-close").addEventListener("click", clearError);
}

async function start() {
  wireControls();
  try {
    const [config, styles] = await Promise.all([
      fetch(`${API}/config`).then((r) => r.json()),
      fetch(`${API}/styles`).then((r) => r.json()),
    ]);
    state.config = config;
    state.styles = styles;
  } catch (err) {
    showError(`Could not reach the server: ${err.message}. Reload the page to try again.`);
    return;
  }
  const sizes = [256, 512, 768, 1024, 1536, 2048].filter((s) => s <= state.config.max_size);
  if (!sizes.includes(state.config.default_size)) sizes.push(state.config.default_size);
  sizes.sort((a, b) => a - b);
  for (const s of sizes) {
    const option = new Option(`${s} px`, String(s), false, s === state.config.default_size);
    $("size").append(option);
  }
  for (const name of state.config.samples) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    button.addEventListener("click", () => loadSample(name));
    $("samples").append(button);
  }
  $("where-row").hidden = !deviceAvailable();
  renderGallery();
  setMode("gallery");
  if (state.config.samples.includes("lake")) await loadSample("lake");
  setStatus("Pick a style: the photo is painted as soon as you choose.");
}

start();
