// IEEE binary16 on the host: the f16 weights and q4 scales hlm packs (src/model/quantize.ts) and reads back in
// float64 (src/reference/matmul-q.ts), and the packed-f16 tensors of mixed precision (TensorRef dtype 'f16'). The GPU
// side is WGSL's unpack2x16float.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Binary16 bits of x (rounded to f32 first), round to nearest even; subnormals kept, overflow to ±Inf. */
export function f16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa steps the exponent, which is the right rounding (up to Inf).
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** The value of binary16 bits. */
export function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The f32 whose bits these are. */
export function f32FromBits(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

/** The bits of x rounded to f32. */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** x rounded to binary16 (and back): what an f16 copy of x holds. */
export function roundF16(x: number): number {
  return f16Value(f16Bits(x));
}

/** values as binary16, two to a u32 word in pack2x16float's order (element 2i in the low half of word i). */
export function packF16(values: ArrayLike<number>): Uint32Array {
  const words = new Uint32Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) words[i >> 1] |= f16Bits(values[i]) << (16 * (i & 1));
  return words;
}
