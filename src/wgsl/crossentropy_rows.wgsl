// Softmax cross-entropy over the rows of one chunk of logits [rows, V], one workgroup a row.
//   loss[r] = lse(logits[r]) − logits[r, target[r]]   (0 where target < 0, NaN where target ≥ V)
//   ARGMAX: amax[r] = the first index of the row's largest logit
//   GRAD:   logits[r] ← (softmax(logits[r]) − onehot(target[r]))·scale in place (0 on ignored
//           and out-of-range rows), scale = the loss scale (1 / counted targets) read from a
//           GPU buffer, so one recorded step serves every batch.
// lse = max + log Σ exp(x − max): no overflow whatever the logits' size. (Keeping the exps in
// place for the gradient instead of recomputing them was slower: a write costs more than an
// exp, on llvmpipe as on GPUs.) Every reduction is a strided fold and a fixed tree in workgroup
// memory, so results repeat bit for bit. The argmax is lib/argmax.wgsl's: NaN wins, the lowest
// index among NaNs.

//#include lib/rows.wgsl
//#include lib/argmax.wgsl

const WG: u32 = 256u;
const RED_WIDTH: u32 = WG;
const RED_GROUPS: u32 = 1u;

struct Params {
  rows: u32, V: u32, offLogits: u32, offTargets: u32,
  offLosses: u32, offScale: u32, offArgmax: u32, nanBits: u32,
}

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
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

fn rows() -> u32 { return p.rows; }

fn row(r: u32, t: u32) {
  let base = p.offLogits + r * p.V;
  let tgt = targets[p.offTargets + r];
  let counted = tgt >= 0 && u32(tgt) < p.V;
  var xt = 0.0; // the target's logit, read before any logit is overwritten
  if (counted) { xt = logits[base + u32(tgt)]; }

  // Row maximum (and its first index).
  var best = ArgMax(logits[base], 0u);
  for (var c = t; c < p.V; c += WG) { best = combine(best, ArgMax(logits[base + c], c), OP_ARGMAX); }
  let top = workgroupReduce(best, OP_ARGMAX, t);

  // Σ exp(x − max).
  var acc = 0.0;
  for (var c = t; c < p.V; c += WG) { acc += exp(logits[base + c] - top.v); }
  let lse = top.v + log(workgroupReduce(ArgMax(acc, 0u), OP_SUM, t).v);

  if (t == 0u) {
    var loss = 0.0;
    if (counted) { loss = lse - xt; }
    else if (tgt >= 0) { loss = bitcast<f32>(p.nanBits); }
    losses[p.offLosses + r] = loss;
//#if ARGMAX
    amax[p.offArgmax + r] = top.i;
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
