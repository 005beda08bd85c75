// f32 → IEEE binary16 bits, round to nearest even, in integer arithmetic: the same bits as the host's f16Bits
// (src/util/f16.ts) on every adapter. Not pack2x16float: WGSL leaves its result indeterminate past f16's range
// (overflow here is ±Inf, so that a loss-scaled value that no longer fits is detectable downstream), and Vulkan
// lets a driver round its f32 → f16 conversion toward zero. Subnormal halves are kept; NaN becomes a quiet NaN
// (0x7e00 with x's sign).
fn f16Bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let exp = (b >> 23u) & 0xffu;
  let mant = b & 0x7fffffu;
  if (exp == 0xffu) { return sign | 0x7c00u | select(0u, 0x200u, mant != 0u); }
  let e = i32(exp) - 112; // the exponent rebiased from 127 to 15
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; } // below half the smallest subnormal
    let m = mant | 0x800000u;
    let shift = u32(14 - e);
    let h = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    return sign | (h + select(0u, 1u, rem > half || (rem == half && (h & 1u) == 1u)));
  }
  let h = (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  // A carry out of the mantissa steps the exponent, which is the right rounding (up to Inf).
  return sign | (h + select(0u, 1u, rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)));
}
