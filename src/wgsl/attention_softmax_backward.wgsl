// Attention softmax backward, in place: given the probabilities att [B, H, T, T] and their
// gradient g (datt, same shape), overwrite g with the gradient of the scaled scores,
// ds_j = p_j (g_j - sum_k p_k g_k) over the n keys the query sees (the mask of
// attention_softmax.wgsl), and exactly 0 past them. The score scale is applied by the caller's
// matmuls. ROWS rows a workgroup, TPR invocations a row, as in attention_softmax.wgsl; fixed
// reduction order (bit-for-bit repeatable).

const ROWS: u32 = 4u;
const TPR: u32 = 32u;
const CAUSAL: bool = true;
const LENGTHS: bool = false;

struct Params {
  rows: u32, T: u32, rowsPerBatch: u32, offAtt: u32,
  offLen: u32, offG: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> att: array<f32>;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
//#if LENGTHS
@group(0) @binding(3) var<storage, read> lengths: array<u32>;
//#endif

var<workgroup> part: array<f32, ROWS * TPR>;

fn visible(row: u32) -> u32 {
  var n = p.T;
  if (CAUSAL) { n = row % p.T + 1u; }
//#if LENGTHS
  n = min(n, lengths[p.offLen + row / p.rowsPerBatch]);
//#endif
  return n;
}

fn rowSum(x: f32, slot: u32, t: u32) -> f32 {
  if (TPR == 1u) { return x; }
  part[slot + t] = x;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (t < s) { part[slot + t] = part[slot + t] + part[slot + t + s]; }
    workgroupBarrier();
  }
  return part[slot];
}

@compute @workgroup_size(TPR, ROWS)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let t = lid.x;
  let row = (wg.y * nwg.x + wg.x) * ROWS + lid.y;
  let valid = row < p.rows; // no early return: the barriers must stay in uniform control flow
  let a = p.offAtt + row * p.T;
  let b = p.offG + row * p.T;
  var n = 0u;
  if (valid) { n = visible(row); }

  var dot = 0.0;
  for (var c = t; c < n; c += TPR) { dot = fma(att[a + c], g[b + c], dot); }
  let total = rowSum(dot, lid.y * TPR, t);

  for (var c = t; c < n; c += TPR) { g[b + c] = att[a + c] * (g[b + c] - total); }
  if (valid) {
    for (var c = n + t; c < p.T; c += TPR) { g[b + c] = 0.0; }
  }
}
