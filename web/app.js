// painterly browser demo: the shipped multi-style ONNX model in onnxruntime-web (wasm), fully offline.
// Pipeline (as painterly.stylize): resize the photo so its longest side is the chosen size (Pillow's LANCZOS,
// see imageops.js), pad to multiples of 4 by reflection, run with use_stats=0 and a zero stats vector,
// crop back, round like to_pil, blend with the photo by the strength (Image.blend).
import * as ort from "./vendor/ort/ort.wasm.min.mjs";
import {
  blend, ensureMinSide, fromImageData, fromTensor, resize, resizeLongest, toImageData, toPaddedTensor,
} from "./imageops.js";

const $ = (id) => document.getElementById(id);
const ui = {
  input: $("photo-input"), drop: $("drop"), samples: $("samples"), photoInfo: $("photo-info"),
  gallery: $("gallery"), mixOn: $("mix-on"), mixControls: $("mix-controls"), style2: $("style2"),
  mix: $("mix"), mixOut: $("mix-out"), strength: $("strength"), strengthOut: $("strength-out"),
  size: $("size"), model: $("model"), modelRow: $("model-row"), run: $("run"), download: $("download"),
  compare: $("compare"), form: $("controls"), canvas: $("result"), placeholder: $("placeholder"), busy: $("busy"), status: $("status"), timings: $("timings"), backend: $("backend"),
};

// State, also read by the browser test through window.painterly.
const state = {
  info: null, session: null, sessions: new Map(), model: null, photo: null, photoName: "photo", running: false,
  last: null, // {photo, stylized, styleWeights, size, inferenceMs, totalMs, ...} of the latest run
  runs: [],
};

function threads() {
  // Threads need SharedArrayBuffer, i.e. a cross-origin isolated page (web/serve.py sends COOP/COEP).
  if (!self.crossOriginIsolated) return 1;
  const n = parseInt(new URL(location.href).searchParams.get("threads"), 10);
  return Number.isFinite(n) && n > 0 ? n : Math.min(navigator.hardwareConcurrency || 1, 8);
}

async function loadInfo() {
  const res = await fetch("vendor/model.json");
  if (!res.ok) throw new Error("web/vendor/ is not built (run 'make web')");
  state.info = await res.json();
  ort.env.wasm.wasmPaths = new URL("vendor/ort/", location.href).href;
  ort.env.wasm.numThreads = threads();
  ort.env.wasm.proxy = false;
}

/** The length of model entry `m`'s frozen-statistics input (it depends on the network's widths). */
function statsSize(m) {
  return m.stats_size ?? state.info.stats_size;
}

/** One small run of model entry `m` so the first painting does not pay for the kernels' first-use set-up. */
async function warmUp(session, m) {
  const S = statsSize(m), n = state.info.styles.length, side = 64;
  const style = new Float32Array(n);
  style[0] = 1;
  const out = await session.run({
    image: new ort.Tensor("float32", new Float32Array(3 * side * side).fill(0.5), [1, 3, side, side]),
    style: new ort.Tensor("float32", style, [1, n]),
    stats: new ort.Tensor("float32", new Float32Array(S), [1, S]),
    use_stats: new ort.Tensor("float32", new Float32Array([0]), [1]),
  }, ["output"]);
  out.output.dispose?.();
}

/** Make (or reuse) the session of model entry `m` of model.json and make it current. */
async function useModel(m) {
  let entry = state.sessions.get(m.file);
  if (!entry) {
    setStatus(`Loading the ${m.label || m.precision} model…`);
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(`vendor/${m.file}`, {
      executionProviders: ["wasm"], graphOptimizationLevel: "all",
    });
    await warmUp(session, m);
    entry = { session, loadMs: performance.now() - t0 };
    state.sessions.set(m.file, entry);
  }
  state.session = entry.session;
  state.model = m;
  const n = ort.env.wasm.numThreads;
  // onnxruntime-web ships one wasm build: SIMD, threads-capable (ort-wasm-simd-threaded.wasm).
  ui.backend.textContent = `onnxruntime-web ${ort.env.versions.web}, wasm SIMD, ${n} thread${n > 1 ? "s" : ""}` +
    (self.crossOriginIsolated ? " (cross-origin isolated)" : " (not cross-origin isolated)") +
    `, ${m.label || m.precision} model (${(m.bytes / 2 ** 20).toFixed(1)} MiB), loaded and warmed up in ${entry.loadMs.toFixed(0)} ms`;
  return entry.loadMs;
}

function buildGallery() {
  const { styles } = state.info;
  styles.forEach((s, i) => {
    const id = `style-${s.name}`;
    const label = document.createElement("label");
    label.className = "style-card";
    label.htmlFor = id;
    label.title = s.artist ? `${s.title || s.name}, ${s.artist}` : s.title || s.name;
    const radio = Object.assign(document.createElement("input"), {
      type: "radio", name: "style", id, value: s.name, checked: i === 0,
    });
    const thumb = document.createElement("span");
    thumb.className = "thumb";
    if (s.thumb) {
      const img = Object.assign(document.createElement("img"), { src: `vendor/${s.thumb}`, alt: "", loading: "lazy" });
      thumb.append(img);
    } else {
      thumb.textContent = (s.title || s.name).slice(0, 1);
    }
    const text = document.createElement("span");
    text.className = "style-text";
    text.innerHTML = "<strong></strong><small></small>";
    text.firstChild.textContent = s.title || s.name;
    text.lastChild.textContent = s.artist || "";
    label.append(radio, thumb, text);
    ui.gallery.append(label);
    ui.style2.append(new Option(s.title || s.name, s.name, false, i === 1));
  });
  for (const m of state.info.models) {
    ui.model.append(new Option(`${m.label || m.precision} (${(m.bytes / 2 ** 20).toFixed(1)} MiB)`, m.file));
  }
  ui.modelRow.hidden = state.info.models.length < 2;
  for (const url of state.info.photos || []) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "sample";
    const name = url.split("/").pop().replace(/\.\w+$/, "");
    b.setAttribute("aria-label", `Use the sample photo ${name}`);
    b.append(Object.assign(document.createElement("img"), { src: `vendor/${url}`, alt: "" }), name);
    b.addEventListener("click", async () => {
      const blob = await (await fetch(`vendor/${url}`)).blob();
      await setPhoto(blob, name);
    });
    ui.samples.append(b);
  }
}

/** Decode a photo (EXIF orientation applied, no colour management, as Pillow) into an RGB image. */
async function decode(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none",
    premultiplyAlpha: "none" });
  const c = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fff"; // transparent photos are painted on white
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return fromImageData(ctx.getImageData(0, 0, c.width, c.height));
}

async function setPhoto(blob, name) {
  try {
    state.photo = await decode(blob);
  } catch {
    setStatus(`Cannot read ${name}: not an image this browser can decode.`, true);
    return;
  }
  state.photoName = name.replace(/\.\w+$/, "") || "photo";
  state.last = null;
  ui.photoInfo.textContent = `${name}: ${state.photo.width} × ${state.photo.height}`;
  showImage(state.photo);
  ui.placeholder.hidden = true;
  ui.download.disabled = true;
  ui.compare.disabled = true;
  ui.canvas.setAttribute("aria-label", "The chosen photo");
  updateRunButton();
  setStatus("Photo loaded. Press Paint.");
}

function selectedStyle() {
  return ui.form.querySelector("input[name=style]:checked")?.value;
}

/** Normalised style weights: the first style, mixed with the second by the mix slider when on. */
function styleWeights() {
  const names = state.info.styles.map((s) => s.name);
  const w = new Float32Array(names.length);
  const a = names.indexOf(selectedStyle());
  const mix = ui.mixOn.checked ? Number(ui.mix.value) / 100 : 0;
  w[a] += 1 - mix;
  if (mix > 0) w[names.indexOf(ui.style2.value)] += mix;
  const total = w.reduce((s, v) => s + v, 0);
  return w.map((v) => v / total);
}

/** Stylize the current photo at `size` with `session`; returns the unblended result and timings. */
async function stylize(session, size, weights) {
  const t0 = performance.now();
  const photo = resizeLongest(state.photo, size);
  const work = ensureMinSide(photo, 16);
  const { tensor, height: H, width: W } = toPaddedTensor(work, 4);
  const S = statsSize(state.model);
  const feeds = {
    image: new ort.Tensor("float32", tensor, [1, 3, H, W]),
    style: new ort.Tensor("float32", Float32Array.from(weights), [1, weights.length]),
    stats: new ort.Tensor("float32", new Float32Array(S), [1, S]),
    use_stats: new ort.Tensor("float32", new Float32Array([0]), [1]),
  };
  const t1 = performance.now();
  const out = await session.run(feeds, ["output"]);
  const t2 = performance.now();
  let stylized = fromTensor(out.output.data, H, W, work.width, work.height);
  out.output.dispose?.();
  if (work !== photo) stylized = resize(stylized, photo.width, photo.height, "lanczos");
  const t3 = performance.now();
  return { photo, stylized, padded: [H, W], preMs: t1 - t0, inferenceMs: t2 - t1, postMs: t3 - t2, totalMs: t3 - t0 };
}

function showImage(img) {
  ui.canvas.width = img.width;
  ui.canvas.height = img.height;
  ui.canvas.getContext("2d").putImageData(toImageData(img), 0, 0);
}

function render() {
  if (!state.last) return;
  const strength = Number(ui.strength.value) / 100;
  const t0 = performance.now();
  showImage(blend(state.last.photo, state.last.stylized, strength));
  state.last.strength = strength;
  state.last.blendMs = performance.now() - t0;
}

async function run() {
  if (!state.photo || !state.session) return;
  if (state.running) {
    state.pending = true; // settings changed while painting: paint again when done
    return;
  }
  state.running = true;
  state.pending = false;
  updateRunButton();
  ui.busy.hidden = false;
  setStatus("Painting…");
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))); // let the spinner paint
  try {
    const size = Number(ui.size.value), weights = styleWeights(), style = selectedStyle(), model = state.model;
    const result = await stylize(state.session, size, weights);
    state.last = { ...result, size, styleWeights: Array.from(weights), style, model: model.file };
    state.runs.push({ size, inferenceMs: result.inferenceMs, totalMs: result.totalMs });
    render();
    ui.download.disabled = false;
    ui.compare.disabled = false;
    const title = (name) => state.info.styles.find((s) => s.name === name)?.title || name;
    const mixed = ui.mixOn.checked && Number(ui.mix.value) > 0 ? ` mixed with ${title(ui.style2.value)}` : "";
    ui.canvas.setAttribute("aria-label", `The photo painted in the style of ${title(state.last.style)}${mixed}`);
    const [h, w] = [result.photo.height, result.photo.width];
    setStatus(`Painted ${w} × ${h} in ${result.totalMs.toFixed(0)} ms.`);
    showTimings(result);
  } catch (err) {
    console.error(err);
    setStatus(`Painting failed: ${err.message || err}`, true);
  } finally {
    state.running = false;
    ui.busy.hidden = true;
    updateRunButton();
  }
  if (state.pending) run();
}

/** After a first painting, changing the style, mix or size paints again. */
function rerun() {
  if (state.last || state.running) run();
}

function showTimings(r) {
  const rows = [["Network (in-browser)", r.inferenceMs], ["Resize and pad", r.preMs], ["Crop and convert", r.postMs],
    ["Total", r.totalMs]];
  ui.timings.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = `${v.toFixed(0)} ms`;
    return [dt, dd];
  }));
}

function setStatus(text, error = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", error);
}

function updateRunButton() {
  ui.run.disabled = !state.photo || !state.session || state.running;
}

function download() {
  const style = state.last?.style || "painted";
  ui.canvas.toBlob((blob) => {
    const a = Object.assign(document.createElement("a"), {
      href: URL.createObjectURL(blob), download: `${state.photoName}-${style}.png`,
    });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }, "image/png");
}

function wire() {
  ui.input.addEventListener("change", () => {
    const f = ui.input.files?.[0];
    if (f) setPhoto(f, f.name);
  });
  // A photo may be dropped anywhere on the page; the drop zone lights up.
  for (const ev of ["dragenter", "dragover"]) {
    document.addEventListener(ev, (e) => { e.preventDefault(); ui.drop.classList.add("over"); });
  }
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) ui.drop.classList.remove("over"); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    ui.drop.classList.remove("over");
    const files = [...(e.dataTransfer?.files || [])];
    const f = files.find((x) => x.type.startsWith("image/")) || files[0];
    if (f) setPhoto(f, f.name);
  });
  ui.gallery.addEventListener("change", rerun);
  ui.style2.addEventListener("change", rerun);
  ui.size.addEventListener("change", rerun);
  ui.model.addEventListener("change", async () => {
    const m = state.info.models.find((x) => x.file === ui.model.value);
    ui.run.disabled = true;
    try {
      await useModel(m);
      setStatus(`The ${m.label || m.precision} model is ready.`);
    } catch (err) {
      console.error(err);
      setStatus(`Cannot load the ${m.label || m.precision} model: ${err.message || err}`, true);
    }
    updateRunButton();
    rerun();
  });
  ui.mixOn.addEventListener("change", () => { ui.mixControls.hidden = !ui.mixOn.checked; rerun(); });
  ui.mix.addEventListener("input", () => { ui.mixOut.value = `${ui.mix.value}%`; });
  ui.mix.addEventListener("change", rerun);
  // Compare: the photo while the button is held (pointer, or Space/Enter on the keyboard).
  const show = (photo) => {
    if (!state.last) return;
    if (photo) showImage(state.last.photo); else render();
  };
  ui.compare.addEventListener("pointerdown", () => show(true));
  for (const ev of ["pointerup", "pointerleave", "blur"]) ui.compare.addEventListener(ev, () => show(false));
  ui.compare.addEventListener("keydown", (e) => { if (e.key === " " || e.key === "Enter") { e.preventDefault(); show(true); } });
  ui.compare.addEventListener("keyup", () => show(false));
  ui.strength.addEventListener("input", () => { ui.strengthOut.value = `${ui.strength.value}%`; render(); });
  ui.form.addEventListener("submit", (e) => { e.preventDefault(); run(); });
  ui.download.addEventListener("click", download);
}

const ready = (async () => {
  wire();
  try {
    await loadInfo();
    buildGallery();
    const loadMs = await useModel(state.info.models[0]);
    setStatus(`Model ready (${state.info.styles.length} styles). Choose a photo.`);
    updateRunButton();
    return { loadMs, threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated, models: state.info.models };
  } catch (err) {
    console.error(err);
    setStatus(`Cannot load the model: ${err.message || err}`, true);
    throw err;
  }
})();

window.painterly = { ready, state, run, styleWeights };
