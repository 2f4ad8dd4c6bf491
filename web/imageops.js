// Image operations of the painterly Python engine, re-done in plain JS so the browser feeds the network
// the same pixels: Pillow's resampling (LANCZOS to shrink, BICUBIC to enlarge; separable, two passes in
// Pillow's order, 22-bit fixed-point weights, uint8 between passes), painterly.imageio.resize_longest
// and ensure_min_side, the bottom/right reflection padding to a multiple of 4
// (painterly.models.transformer.pad_to_multiple), to_pil's rounding and Image.blend for the strength.
//
// Images here are {width, height, data: Uint8ClampedArray RGB (3 bytes a pixel)}.

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

export const FILTERS = {
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

/** Per output pixel: first input index, count and integer weights (Pillow's precompute_coeffs). */
function coefficients(inSize, outSize, filter) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const starts = new Int32Array(outSize);
  const counts = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      pre[x] = filter.fn((x + xmin - center + 0.5) * ss);
      total += pre[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = total !== 0 ? pre[x] / total : pre[x];
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    starts[xx] = xmin;
    counts[xx] = xmax;
  }
  return { starts, counts, weights, ksize };
}

function clip8(acc) {
  const v = Math.floor(acc / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * One separable pass of Pillow's resampling (ImagingResampleHorizontal/Vertical_8bpc) along the width
 * (`vertical` false) or the height: every output sample is a fixed-point weighted sum of input samples.
 */
function resamplePass(img, outSize, filter, vertical) {
  const { width, height, data } = img;
  const inSize = vertical ? height : width;
  const { starts, counts, weights, ksize } = coefficients(inSize, outSize, filter);
  const outW = vertical ? width : outSize, outH = vertical ? outSize : height;
  const out = new Uint8ClampedArray(outW * outH * 3);
  const lines = vertical ? width : height; // the lines along which the pass runs
  const inLine = vertical ? 3 : width * 3, outLine = vertical ? 3 : outW * 3; // from one line to the next
  const inStep = vertical ? width * 3 : 3, outStep = vertical ? outW * 3 : 3; // along a line
  for (let line = 0; line < lines; line++) {
    for (let i = 0; i < outSize; i++) {
      const first = line * inLine + starts[i] * inStep, n = counts[i], k = i * ksize;
      let r = HALF, g = HALF, b = HALF;
      for (let j = 0; j < n; j++) {
        const w = weights[k + j], p = first + j * inStep;
        r += data[p] * w;
        g += data[p + 1] * w;
        b += data[p + 2] * w;
      }
      const o = line * outLine + i * outStep;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return { width: outW, height: outH, data: out };
}

/**
 * Pillow's Image.resize((w, h), filter) of an RGB image. Pillow (13.0, measured) runs the horizontal pass first,
 * except when the height loses more than twice as many pixels as the width and the image does not grow both ways.
 */
export function resize(img, w, h, filterName) {
  const filter = FILTERS[filterName];
  const grows = w > img.width && h > img.height;
  const verticalFirst = !grows && img.height - h > 2 * (img.width - w);
  let out = img;
  if (verticalFirst && h !== out.height) out = resamplePass(out, h, filter, true);
  if (w !== out.width) out = resamplePass(out, w, filter, false);
  if (h !== out.height) out = resamplePass(out, h, filter, true);
  return out;
}

/** painterly.imageio.resize_longest: longest side `size`, aspect kept; LANCZOS down, BICUBIC up. */
export function resizeLongest(img, size) {
  const scale = size / Math.max(img.width, img.height);
  const w = Math.max(1, pyRound(img.width * scale));
  const h = Math.max(1, pyRound(img.height * scale));
  if (w === img.width && h === img.height) return img;
  return resize(img, w, h, scale < 1 ? "lanczos" : "bicubic");
}

/** painterly.imageio.ensure_min_side: BICUBIC upscale so the short side is at least `minSide`. */
export function ensureMinSide(img, minSide = 16) {
  const short = Math.min(img.width, img.height);
  if (short >= minSide) return img;
  const scale = minSide / short;
  const w = Math.max(minSide, pyRound(img.width * scale));
  const h = Math.max(minSide, pyRound(img.height * scale));
  return resize(img, w, h, "bicubic");
}

/** Python's round(): halves to even. */
export function pyRound(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Reflect index i into [0, n) without repeating the edge (torch's "reflect"), or clamp ("replicate"). */
function sourceIndex(i, n, reflect) {
  if (i < n) return i;
  return reflect ? 2 * (n - 1) - i : n - 1;
}

/**
 * RGB uint8 image -> planar float32 [1, 3, H', W'] in [0, 1], H' and W' padded bottom/right to multiples of
 * `multiple` by reflection (replicate when the image is too small to reflect), as pad_to_multiple.
 */
export function toPaddedTensor(img, multiple = 4) {
  const { width: w, height: h, data } = img;
  const ph = (multiple - (h % multiple)) % multiple;
  const pw = (multiple - (w % multiple)) % multiple;
  const reflect = ph < h && pw < w;
  const H = h + ph, W = w + pw, plane = H * W;
  const t = new Float32Array(3 * plane);
  for (let y = 0; y < H; y++) {
    const sy = sourceIndex(y, h, reflect);
    for (let x = 0; x < W; x++) {
      const p = (sy * w + sourceIndex(x, w, reflect)) * 3, o = y * W + x;
      t[o] = data[p] / 255;
      t[plane + o] = data[p + 1] / 255;
      t[2 * plane + o] = data[p + 2] / 255;
    }
  }
  return { tensor: t, height: H, width: W };
}

/** Planar float [3, H, W] output -> the top-left w x h crop as RGB uint8 (to_pil's clamp and round-half-even). */
export function fromTensor(t, H, W, w, h) {
  const plane = H * W, out = new Uint8ClampedArray(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * W + x, o = (y * w + x) * 3;
      for (let c = 0; c < 3; c++) {
        let v = t[c * plane + i];
        v = Number.isNaN(v) ? 0 : Math.min(1, Math.max(0, v));
        out[o + c] = pyRound(Math.fround(v * 255));
      }
    }
  }
  return { width: w, height: h, data: out };
}

/** Pillow's Image.blend(photo, stylized, strength): photo + strength * (stylized - photo) in C float, truncated. */
export function blend(photo, stylized, strength) {
  if (strength >= 1) return stylized;
  const f = Math.fround, alpha = f(strength);
  const a = photo.data, b = stylized.data, out = new Uint8ClampedArray(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.trunc(f(a[i] + f(alpha * (b[i] - a[i]))));
  return { width: photo.width, height: photo.height, data: out };
}

/** `n` pixels of `src` (`from` bytes each) as RGB (`to` = 3) or opaque RGBA (`to` = 4). */
function repack(src, n, from, to) {
  const out = new Uint8ClampedArray(n * to);
  for (let p = 0, i = 0, o = 0; p < n; p++, i += from, o += to) {
    out[o] = src[i];
    out[o + 1] = src[i + 1];
    out[o + 2] = src[i + 2];
    if (to === 4) out[o + 3] = 255;
  }
  return out;
}

/** RGB image -> ImageData (opaque RGBA) for a canvas. */
export function toImageData(img) {
  return new ImageData(repack(img.data, img.width * img.height, 3, 4), img.width, img.height);
}

/** RGBA ImageData -> RGB image (alpha dropped; the caller flattens transparent photos first). */
export function fromImageData(imageData) {
  const { width, height, data } = imageData;
  return { width, height, data: repack(data, width * height, 4, 3) };
}
