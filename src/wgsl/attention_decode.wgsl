// Single-query attention for decoding with a KV cache: one new token's query against the
// cached keys and values of positions 0..len-1 (len read from a buffer, so one recorded
// dispatch serves every step). One workgroup per head:
//   scores_j = scale·q·k_j (written to the scores scratch), stable softmax over j < len,
//   out = Σ_j p_j·v_j.
// The cache is [maxLen, 2d]: row j holds every head's key, then every head's value (the k and
// v thirds of GPT-2's packed c_attn row). In the ·V pass the invocations split as SLICES key
// slices × HD dims (SLICES = WG / HD when HD ≤ WG), so narrow heads keep every invocation
// busy; the slices' partial sums then add in a fixed order, so results repeat bit for bit.
// len = 0 outputs zeros. HD, the head width, is the host's.
//#include lib/reduce_f32.wgsl

const WG: u32 = 64u;
const HD: u32 = 64u;
const SLICES: u32 = max(WG / HD, 1u);
const RED_WIDTH: u32 = WG;
const RED_GROUPS: u32 = 1u;
const LOWEST: f32 = -3.4028234e38; // the lowest finite f32 (the identity of max here)

struct Params { d: u32, maxLen: u32, offQ: u32, offKV: u32, offOut: u32, offLen: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read> lengths: array<u32>;
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> qs: array<f32, HD>;
var<workgroup> part: array<f32, SLICES * HD>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let h = wg.x;
  let len = min(lengths[p.offLen], p.maxLen);
  let row = 2u * p.d;
  let kBase = p.offKV + h * HD;
  let vBase = kBase + p.d;
  let sBase = h * p.maxLen;
  for (var i = t; i < HD; i += WG) { qs[i] = q[p.offQ + h * HD + i]; }
  workgroupBarrier();

  var m = LOWEST;
  for (var j = t; j < len; j += WG) {
    var s = 0.0;
    for (var i = 0u; i < HD; i++) { s += qs[i] * kv[kBase + j * row + i]; }
    s *= p.scale;
    scores[sBase + j] = s;
    m = max(m, s);
  }
  let mx = workgroupReduce(m, OP_MAX, t);

  var sum = 0.0;
  for (var j = t; j < len; j += WG) {
    let e = exp(scores[sBase + j] - mx);
    scores[sBase + j] = e;
    sum += e;
  }
  let total = workgroupReduce(sum, OP_SUM, t);
  storageBarrier(); // every invocation's exps visible to all

  for (var e = t; e < SLICES * HD; e += WG) {
    let i = e % HD;
    var acc = 0.0;
    for (var j = e / HD; j < len; j += SLICES) { acc += scores[sBase + j] * kv[vBase + j * row + i]; }
    part[e] = acc;
  }
  workgroupBarrier();
  for (var i = t; i < HD; i += WG) {
    var acc = 0.0;
    for (var s = 0u; s < SLICES; s++) { acc += part[s * HD + i]; }
    out[p.offOut + h * HD + i] = select(0.0, acc / total, len > 0u);
  }
}
