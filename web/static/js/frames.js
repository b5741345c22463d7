// The binary image frames of the stream, as stream/frames.go lays them out
// (version 1, little-endian):
//
//   version u8, kind u8, seq u64, step u64, session id (u8 length + bytes),
//   group count u16, then per group: name (u8 length + bytes), H u16, W u16,
//   C u16, lo f32, hi f32, H*W*C pixel bytes, channel-major.
//
// A pixel byte p stands for lo + p*(hi-lo)/255.

/** Frame kinds. */
export const KIND = Object.freeze({ filters: 1, activations: 2, prediction: 3, snapshot: 4 });

const decoder = new TextDecoder();

/**
 * parseFrame decodes an image frame from an ArrayBuffer. It throws on a
 * frame it cannot read. Group pixels are views into the buffer.
 */
export function parseFrame(buffer) {
  const view = new DataView(buffer);
  let off = 0;
  const need = (n) => {
    if (off + n > buffer.byteLength) throw new Error(`image frame truncated at byte ${off}`);
  };
  const u8 = () => { need(1); return view.getUint8(off++); };
  const u16 = () => { need(2); const v = view.getUint16(off, true); off += 2; return v; };
  const f32 = () => { need(4); const v = view.getFloat32(off, true); off += 4; return v; };
  // seq and step are uint64; Number holds them exactly up to 2^53.
  const u64 = () => { need(8); const v = Number(view.getBigUint64(off, true)); off += 8; return v; };
  const str = () => { const n = u8(); need(n); const s = decoder.decode(new Uint8Array(buffer, off, n)); off += n; return s; };

  const version = u8();
  if (version !== 1) throw new Error(`image frame version ${version} is not supported`);
  const frame = { kind: u8(), seq: u64(), step: u64(), session: str(), groups: [] };
  const count = u16();
  for (let i = 0; i < count; i++) {
    const name = str();
    const h = u16(), w = u16(), c = u16();
    const lo = f32(), hi = f32();
    const n = h * w * c;
    need(n);
    frame.groups.push({ name, h, w, c, lo, hi, pixels: new Uint8Array(buffer, off, n) });
    off += n;
  }
  return frame;
}
