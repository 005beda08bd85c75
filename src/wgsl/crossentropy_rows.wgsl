// Softmax cross-entropy over the rows of one chunk of logits [rows, V], one workgroup a row.
//   loss[r] = lse(logits[r]) − logits[r, target[r]]   (0 where target < 0, NaN where target ≥ V)
//   ARGMAX: amax[r] = the first index of the row's largest logit
//   GRAD:   logits[r] ← (softmax(logits[r]) − onehot(target[r]))·scale in place (0 on ignored
//           and out-of-range rows), scale = the loss scale (1 / counted targets) read from a
//           GPU buffer, so one recorded step serves every batch.
// lse = max + log Σ exp(x − max): no overflow whatever the logits' size. (Keeping the exps in
// place for the gradient instead of recomputing them was slower: a write costs more than an
// exp, on llvmpipe as on GPUs.) Every reduction is
// a strided fold and a fixed tree in workgroup memory, so results repeat bit for bit.

const WG: u32 = 256u;
// Without SCALE_BINDING the loss scale lives in the losses' own buffer and is read through
// that binding (WebGPU forbids one buffer bound both writable and read-only in a dispatch).
const B_SCALE: u32 = 4u;
const B_ARGMAX: u32 = 5u;

struct Params {
  rows: u32, V: u32, offLogits: u32, offTargets: u32,
  offLosses: u32, offScale: u32, offArgmax: u32, nanBits: u32,
}

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> losses: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
//#if SCALE_BINDING
@group(0) @binding(B_SCALE) var<storage, read> lossScale: array<f32>;
//#endif
//#if ARGMAX
@group(0) @binding(B_ARGMAX) var<storage, read_write> amax: array<u32>;
//#endif

var<workgroup> vals: array<f32, WG>;
var<workgroup> idx: array<u32, WG>;

// (a, ia) vs (b, ib): the larger value, the lower index on ties; NaN wins (propagates).
// WGSL lets compilers assume floats are never NaN, so `x != x` may fold away; test the bits.
fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

fn better(a: f32, ia: u32, b: f32, ib: u32) -> bool {
  if (isNan(b)) { return !isNan(a); }
  return b > a || (b == a && ib < ia);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.rows) { return; } // uniform per workgroup, so the barriers below stay uniform
  let base = p.offLogits + row * p.V;
  let tgt = targets[p.offTargets + row];
  let counted = tgt >= 0 && u32(tgt) < p.V;
  var xt = 0.0; // the target's logit, read before any logit is overwritten
  if (counted) { xt = logits[base + u32(tgt)]; }

  // Row maximum (and its first index).
  var m = logits[base];
  var im = 0u;
  for (var c = t; c < p.V; c += WG) {
    let x = logits[base + c];
    if (better(m, im, x, c)) { m = x; im = c; }
  }
  vals[t] = m;
  idx[t] = im;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s && better(vals[t], idx[t], vals[t + s], idx[t + s])) {
      vals[t] = vals[t + s];
      idx[t] = idx[t + s];
    }
    workgroupBarrier();
  }
  let mx = vals[0];
  let imx = idx[0];
  workgroupBarrier();

  // Σ exp(x − max).
  var acc = 0.0;
  for (var c = t; c < p.V; c += WG) { acc += exp(logits[base + c] - mx); }
  vals[t] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { vals[t] += vals[t + s]; }
    workgroupBarrier();
  }
  let lse = mx + log(vals[0]);

  if (t == 0u) {
    var loss = 0.0;
    if (counted) { loss = lse - xt; }
    else if (tgt >= 0) { loss = bitcast<f32>(p.nanBits); }
    losses[p.offLosses + row] = loss;
//#if ARGMAX
    amax[p.offArgmax + row] = imx;
//#endif
  }

//#if GRAD
//#if SCALE_BINDING
  let scale = lossScale[p.offScale];
//#else
  let scale = losses[p.offScale];
//#endif
  // Each invocation overwrites only the elements it alone read since the barriers above
  // (the target's logit was read at the start): no barrier needed.
  for (var c = t; c < p.V; c += WG) {
    var g = 0.0;
    if (counted) { g = (exp(logits[base + c] - lse) - select(0.0, 1.0, c == u32(tgt))) * scale; }
    logits[base + c] = g;
  }
//#endif
}
