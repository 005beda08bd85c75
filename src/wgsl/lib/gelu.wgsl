// GELU, tanh approximation (GPT-2's gelu_new): gelu(x) = 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³).
// Written as 0.5·(1 + tanh(u)) = σ(2u) = 1/(1 + e^(−2u)), which keeps the negative tail's relative precision
// (1 + tanh(u) cancels there), with e^(−|2u|) ≤ 1 the only exponential taken, so it never overflows. The tanh
// argument is clamped by clamping x to ±GELU_XMAX before the cube: at |x| = 20, |2u| > 600, so σ(2u) is exactly
// 1 or 0 in f32 and the clamp changes nothing, and no intermediate ever overflows: x = ±1e30 gives x or −0 with
// gradient 1 or 0, never Inf or NaN. Used by gelu.wgsl and by the matmul epilogue.

const GELU_XMAX: f32 = 20.0;
const GELU_S: f32 = 0.7978845608028654; // √(2/π)
const GELU_A: f32 = 0.044715;

// What the forward and the backward share: x clamped, e = e^(−|2u|), r = 1/(1 + e) and σ(2u).
struct GeluParts { xc: f32, e: f32, r: f32, sig: f32 }

fn geluParts(x: f32) -> GeluParts {
  let xc = clamp(x, -GELU_XMAX, GELU_XMAX);
  let z = 2.0 * GELU_S * (xc + GELU_A * xc * xc * xc); // 2u
  let e = exp(-abs(z));                                 // in (0, 1]
  let r = 1.0 / (1.0 + e);
  return GeluParts(xc, e, r, select(e * r, r, z >= 0.0));
}

fn gelu(x: f32) -> f32 { return x * geluParts(x).sig; }
