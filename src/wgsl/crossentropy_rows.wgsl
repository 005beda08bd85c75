// The cross-entropy head's per-row end, one workgroup a row: merge the row's `parts` softmax
// partials from crossentropy_logits.wgsl (in their order, then a fixed tree: bit-for-bit
// repeatable) into lse = m + log Σ exp(x − m), then
//   loss[r] = lse − logit[target]   (0 where target < 0, NaN where target ≥ V)
//   ARGMAX: amax[r] = the first index of the row's largest logit (NaN first)
//   GRAD:   logits[r] ← (exp(logits[r] − lse) − onehot(target))·scale in place over the chunk's
//           stored logits (0 on ignored and out-of-range rows), scale = the loss scale (1 / counted
//           targets) read from a GPU buffer, so one recorded step serves every batch; with GRAD_SCALE
//           times a second scalar, the gradient multiplier of dynamic loss scaling (mixed precision),
//           which the step guard changes on the GPU. It multiplies last, so a power of two scales
//           every gradient exactly; losses and argmax never see it.
// FROM_LOGITS: no partials; matmul wrote the chunk's logits whole (read only, without GRAD: evaluation), and the
// row's state comes from them, a pass for the max (and argmax and the target's logit), a pass for Σ exp(x − max)
// (one exp a logit, not the two of folding them in one at a time).
// The stored logits are read and written as vec4s, invocation t taking vec4 columns t, t + WG, ... (rows and offset
// multiples of 4: the host pads the rows to a multiple of 64): on llvmpipe each load or store is a loop over the SIMD
// lanes, so a scalar pass over GPT-2's vocabulary cost four times the loads. The gradient pass writes zeros into the
// row's padding up to the next multiple of 4; the padding never counts.

//#include lib/rows.wgsl
//#include lib/softmax_state.wgsl
//#include lib/reduce.wgsl

const WG: u32 = 256u;
const RED_WIDTH: u32 = WG;
const RED_GROUPS: u32 = 1u;
const ARGMAX: bool = false;
// The gradient multiplier: none, in a binding of its own, or in the losses' buffer (read through that binding).
const GRAD_SCALE: bool = false;
const GRAD_SCALE_IN_LOSSES: bool = false;
const FROM_LOGITS: bool = false;

alias Red = Softmax;
fn combine(a: Softmax, b: Softmax, op: u32) -> Softmax { return mergeSoftmax(a, b); }

struct Params {
  rows: u32, V: u32, parts: u32, offStats: u32,
  offTargets: u32, offLosses: u32, offScale: u32, offArgmax: u32,
  offLogits: u32, nanBits: u32, offGradScale: u32, ldLogits: u32,
}

//#if FROM_LOGITS
//#else
@group(0) @binding(0) var<storage, read> stats: array<vec4<f32>>;
//#endif
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> losses: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
// Without SCALE_BINDING the loss scale lives in the losses' own buffer and is read through that
// binding (WebGPU forbids one buffer bound both writable and read-only in a dispatch).
//#if SCALE_BINDING
@group(0) @binding(4) var<storage, read> lossScale: array<f32>;
//#endif
//#if ARGMAX
@group(0) @binding(5) var<storage, read_write> amax: array<u32>;
//#endif
//#if GRAD
@group(0) @binding(6) var<storage, read_write> logits: array<vec4<f32>>;
//#else
//#if FROM_LOGITS
@group(0) @binding(6) var<storage, read> logits: array<vec4<f32>>;
//#endif
//#endif
//#if GRAD_SCALE_BINDING
@group(0) @binding(7) var<storage, read> gradScale: array<f32>;
//#endif

fn gradMultiplier() -> f32 {
//#if GRAD_SCALE_BINDING
  return gradScale[p.offGradScale];
//#else
  if (GRAD_SCALE_IN_LOSSES) { return losses[p.offGradScale]; }
  return 1.0;
//#endif
}

fn rows() -> u32 { return p.rows; }

//#if FROM_LOGITS
// Invocation t's state over the stored logits of row r: vec4 columns t, t + WG, ...
fn logitsState(r: u32, t: u32) -> Softmax {
  let base = (p.offLogits + r * p.ldLogits) / 4u;
  let tgt = targets[p.offTargets + r];
  let quads = (p.V + 3u) / 4u;
  var st = SOFTMAX_EMPTY;
  for (var q = t; q < quads; q += WG) {
    let x = logits[base + q];
    let col = vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u);
    let valid = col < vec4<u32>(p.V);
    if (ARGMAX) {
      for (var j = 0u; j < 4u; j++) {
        if (valid[j] && better(ArgMax(st.m, st.i), ArgMax(x[j], col[j]))) { st.m = x[j]; st.i = col[j]; }
      }
    } else {
      let v = select(vec4<f32>(SOFTMAX_EMPTY.m), x, valid);
      st.m = max(st.m, max(max(v.x, v.y), max(v.z, v.w)));
    }
    if (tgt >= 0 && u32(tgt) < p.V && u32(tgt) / 4u == q) { st.t = x[u32(tgt) % 4u]; }
  }
  for (var q = t; q < quads; q += WG) {
    let valid = vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.V);
    let e = select(vec4<f32>(0.0), exp(logits[base + q] - st.m), valid);
    st.s += (e.x + e.y) + (e.z + e.w);
  }
  return st;
}
//#endif

fn row(r: u32, t: u32) {
//#if FROM_LOGITS
  let acc = logitsState(r, t);
//#else
  var acc = SOFTMAX_EMPTY;
  for (var j = t; j < p.parts; j += WG) { acc = mergeSoftmax(acc, unpackSoftmax(stats[p.offStats + j * p.rows + r])); }
//#endif
  let total = workgroupReduce(acc, 0u, t);
  let lse = total.m + log(total.s);
  let tgt = targets[p.offTargets + r];
  let counted = tgt >= 0 && u32(tgt) < p.V;
  if (t == 0u) {
    var loss = 0.0;
    if (counted) { loss = lse - total.t; }
    else if (tgt >= 0) { loss = bitcast<f32>(p.nanBits); }
    losses[p.offLosses + r] = loss;
//#if ARGMAX
    amax[p.offArgmax + r] = total.i;
//#endif
  }

//#if GRAD
//#if SCALE_BINDING
  let scale = lossScale[p.offScale];
//#else
  let scale = losses[p.offScale];
//#endif
  let multiplier = gradMultiplier();
  let base = (p.offLogits + r * p.ldLogits) / 4u;
  for (var q = t; q < (p.V + 3u) / 4u; q += WG) {
    let col = vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u);
    var g = vec4<f32>(0.0);
    if (counted) {
      g = (exp(logits[base + q] - lse) - select(vec4<f32>(0.0), vec4<f32>(1.0), col == vec4<u32>(u32(tgt)))) * scale;
    }
    if (GRAD_SCALE) { g *= multiplier; }
    logits[base + q] = select(vec4<f32>(0.0), g, col < vec4<u32>(p.V));
  }
//#endif
}
