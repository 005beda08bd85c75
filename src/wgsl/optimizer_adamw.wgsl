// One AdamW step over a flat parameter buffer, one invocation an element, with
// torch.optim.AdamW's arithmetic (single-tensor path), in f32:
//   g ← g·gscale                 (global-norm clipping's scale, read from a GPU buffer)
//   p ← p·(1 − lr·wd)            (decoupled weight decay, where the decay mask says so)
//   m ← m + (1−β1)·(g − m);  v ← v·β2 + (1−β2)·g²
//   p ← p − lr/(1−β1^t) · m / (√v / √(1−β2^t) + eps)
// The per-step numbers (lr, bias corrections) sit in the uniform, rewritten before each
// submit. The decay mask has one bit per 64-element block of the parameter range (bit b%32
// of word b/32 for block b): the layout starts every tensor on a 64-float boundary. Where a
// buffer exceeds the adapter's storage-binding limit the range runs as several dispatches,
// each over a bound window of it; maskBase is the window's first element in the range.

const WG: u32 = 256u;
const B_MASK: u32 = 5u;
const B_SCALE: u32 = 6u;

struct Params {
  n: u32, offP: u32, offG: u32, offM: u32,
  offV: u32, offMask: u32, offScale: u32, maskBase: u32,
  oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32, eps: f32,
  stepSize: f32, bc2Sqrt: f32, decayFactor: f32, _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> mom1: array<f32>;
@group(0) @binding(3) var<storage, read_write> mom2: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
//#if MASK
@group(0) @binding(B_MASK) var<storage, read> mask: array<u32>;
//#endif
//#if SCALE
@group(0) @binding(B_SCALE) var<storage, read> gscale: array<f32>;
//#endif

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.n) { return; }
  var g = grads[p.offG + i];
//#if SCALE
  g = g * gscale[p.offScale];
//#endif
  var w = params[p.offP + i];
//#if MASK
  let block = (p.maskBase + i) / 64u;
  let decay = (mask[p.offMask + block / 32u] & (1u << (block % 32u))) != 0u;
//#else
  let decay = true;
//#endif
  if (decay) { w = w * p.decayFactor; }
  let m = mom1[p.offM + i];
  let m1 = m + p.oneMinusBeta1 * (g - m);
  let v1 = mom2[p.offV + i] * p.beta2 + p.oneMinusBeta2 * (g * g);
  let denom = sqrt(v1) / p.bc2Sqrt + p.eps;
  mom1[p.offM + i] = m1;
  mom2[p.offV + i] = v1;
  params[p.offP + i] = w - p.stepSize * (m1 / denom);
}
