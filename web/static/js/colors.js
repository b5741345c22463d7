// Colour scales for weights and activations, as lookup tables of 256 RGB
// entries indexed by a frame's pixel byte.

const NEGATIVE = [37, 99, 235]; // #2563eb
const POSITIVE = [220, 38, 38]; // #dc2626

/**
 * diverging is sessions.Diverging: t in [-1, 1] from blue (negative)
 * through white (zero) to red (positive), mixed linearly in sRGB.
 */
export function diverging(t) {
  t = Math.max(-1, Math.min(1, t));
  const end = t < 0 ? NEGATIVE : POSITIVE;
  const a = Math.abs(t);
  return end.map((c) => Math.round(255 + (c - 255) * a));
}

function table(f) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let b = 0; b < 256; b++) lut.set(f(b), 3 * b);
  return lut;
}

/**
 * DIVERGING maps the bytes of a filters group, whose scale is symmetric
 * (lo = -a, hi = a): byte b stands for (2b/255 - 1)·a.
 */
export const DIVERGING = table((b) => diverging((2 * b) / 255 - 1));

/** GREY maps activation bytes: black for the group's lowest value (zero after a ReLU), white for its highest. */
export const GREY = table((b) => [b, b, b]);

/** INK maps greyscale ink bytes (0 background, 255 ink) to dark ink on white, like the drawing canvas. */
export const INK = table((b) => {
  const v = 255 - Math.round(b * (255 - 15) / 255); // ink ends at #0f0f0f, not pure black
  return [v, v, v + Math.round(b * 0.1)];
});

/**
 * paint draws w*h bytes of pixels, starting at offset, into canvas (resized
 * to w x h), through a lookup table.
 */
export function paint(canvas, pixels, offset, w, h, lut) {
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  const d = img.data;
  for (let i = 0, n = w * h; i < n; i++) {
    const b = 3 * pixels[offset + i];
    d[4 * i] = lut[b];
    d[4 * i + 1] = lut[b + 1];
    d[4 * i + 2] = lut[b + 2];
    d[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}
