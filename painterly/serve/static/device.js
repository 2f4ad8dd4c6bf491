// "Run on this device": the shipped int8 ONNX model in onnxruntime-web (wasm), when the server offers it
// (GET /api/v1/config -> device). Inputs follow painterly's ONNX contract: image [1,3,H,W] in [0,1] with H, W
// multiples of 4, style weights [1,N], frozen statistics [1,S] (unused: use_stats = 0).
"use strict";

window.PainterlyDevice = (() => {
  let session = null;
  let loading = null;
  let ort = null;

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      tag.src = src;
      tag.onload = resolve;
      tag.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.append(tag);
    });
  }

  async function getSession(device) {
    if (session) return session;
    if (!loading) {
      loading = (async () => {
        if (device.script.endsWith(".mjs")) {
          ort = await import(device.script);  // the ES module build
        } else {
          if (!window.ort) await loadScript(device.script);
          ort = window.ort;
        }
        ort.env.wasm.wasmPaths = device.wasm_base;
        ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
        const create = ort.InferenceSession.create(device.model, { executionProviders: ["wasm"] });
        const late = new Promise((_, reject) => setTimeout(() => reject(new Error("onnxruntime-web did not start")), 60000));
        session = await Promise.race([create, late]);
        return session;
      })().catch((err) => { loading = null; throw err; });
    }
    return loading;
  }

  function dims(width, height, size) {
    const scale = Math.min(1, size / Math.max(width, height));
    const round4 = (v) => Math.max(16, Math.round((v * scale) / 4) * 4);
    return [round4(width), round4(height)];
  }

  async function run(device, { photo, weights, strength, size, format }) {
    const sess = await getSession(device);
    const bitmap = await createImageBitmap(photo);
    const [w, h] = dims(bitmap.width, bitmap.height, size);
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingQuality = "high";  // a filtered downscale, closer to the server's Lanczos
    ctx.drawImage(bitmap, 0, 0, w, h);
    const pixels = ctx.getImageData(0, 0, w, h).data;
    const plane = w * h;
    const image = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      image[i] = pixels[4 * i] / 255;
      image[plane + i] = pixels[4 * i + 1] / 255;
      image[2 * plane + i] = pixels[4 * i + 2] / 255;
    }
    const style = new Float32Array(device.styles.length);
    let total = 0;
    for (const [name, weight] of Object.entries(weights)) {
      const k = device.styles.indexOf(name);
      if (k < 0) throw new Error(`the on-device model has no style '${name}'`);
      style[k] += weight;
      total += weight;
    }
    for (let k = 0; k < style.length; k++) style[k] /= total || 1;
    const T = ort.Tensor;
    const feeds = {
      image: new T("float32", image, [1, 3, h, w]),
      style: new T("float32", style, [1, style.length]),
      stats: new T("float32", new Float32Array(device.stats_size), [1, device.stats_size]),
      use_stats: new T("float32", new Float32Array([0]), [1]),
    };
    const out = (await sess.run(feeds, ["output"])).output.data;
    const result = ctx.createImageData(w, h);
    for (let i = 0; i < plane; i++) {
      result.data[4 * i] = out[i] * 255;
      result.data[4 * i + 1] = out[plane + i] * 255;
      result.data[4 * i + 2] = out[2 * plane + i] * 255;
      result.data[4 * i + 3] = 255;
    }
    const painted = document.createElement("canvas");
    painted.width = w;
    painted.height = h;
    painted.getContext("2d").putImageData(result, 0, 0);
    ctx.globalAlpha = strength;  // blend over the resized photo, as strength does on the server
    ctx.drawImage(painted, 0, 0);
    const type = format === "png" ? "image/png" : "image/jpeg";
    return new Promise((resolve) => canvas.toBlob(resolve, type, 0.92));
  }

  return { run };
})();
