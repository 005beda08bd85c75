// Attention softmax, in place over rows of already scaled scores att [B, H, T, T] (one row a
// query), and its backward. Row (b, h, i) sees its first n keys, n = i + 1 when CAUSAL (else
// T), capped at lengths[b] with a key padding mask.
//   forward   att ← p = exp(s − max) / sum over the n keys, and 0 past them. A row that sees
//             no key (n = 0) becomes all zeros, not NaN.
//   BACKWARD  given the probabilities att and their gradient g (datt, same shape), overwrite g
//             with the gradient of the scaled scores, ds_j = p_j (g_j − Σ_k p_k g_k) over the
//             n keys, and exactly 0 past them. The score scale is applied by the caller's matmuls.
//
// A workgroup handles ROWS rows with TPR invocations each (TPR a power of two): each strides
// over its row, then the TPR partial results combine in a fixed tree in workgroup memory
// (skipped when TPR = 1), so results repeat bit for bit.
//#include lib/grid.wgsl
//#include lib/reduce_f32.wgsl

const ROWS: u32 = 4u;
const TPR: u32 = 32u;
const CAUSAL: bool = true;
const LENGTHS: bool = false;
const RED_WIDTH: u32 = TPR;
const RED_GROUPS: u32 = ROWS;
const LOWEST: f32 = -3.4028234e38; // the lowest finite f32 (the identity of max here)

struct Params { rows: u32, T: u32, rowsPerBatch: u32, offAtt: u32, offLen: u32, offG: u32 }

//#if BACKWARD
@group(0) @binding(0) var<storage, read> att: array<f32>;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
//#else
@group(0) @binding(0) var<storage, read_write> att: array<f32>;
//#endif
@group(0) @binding(2) var<uniform> p: Params;
//#if LENGTHS
@group(0) @binding(3) var<storage, read> lengths: array<u32>;
//#endif

// How many keys (a prefix of the row) query `row` may see.
fn visible(row: u32) -> u32 {
  var n = p.T;
  if (CAUSAL) { n = row % p.T + 1u; }
//#if LENGTHS
  n = min(n, lengths[p.offLen + row / p.rowsPerBatch]);
//#endif
  return n;
}

@compute @workgroup_size(TPR, ROWS)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let t = lid.x;
  let row = groupIndex(wg, nwg) * ROWS + lid.y;
  let valid = row < p.rows; // no early return: the barriers must stay in uniform control flow
  let a = p.offAtt + row * p.T;
  var n = 0u;
  if (valid) { n = visible(row); }
  let first = lid.y * TPR; // this row's tree in workgroup memory
//#if BACKWARD
  let b = p.offG + row * p.T;
  var dot = 0.0;
  for (var c = t; c < n; c += TPR) { dot = fma(att[a + c], g[b + c], dot); }
  let total = treeReduce(dot, OP_SUM, t, first, 1u);
  for (var c = t; c < n; c += TPR) { g[b + c] = att[a + c] * (g[b + c] - total); }
  if (valid) {
    for (var c = n + t; c < p.T; c += TPR) { g[b + c] = 0.0; }
  }
//#else
  var m = LOWEST;
  for (var c = t; c < n; c += TPR) { m = max(m, att[a + c]); }
  let mx = treeReduce(m, OP_MAX, t, first, 1u);
  var sum = 0.0;
  for (var c = t; c < n; c += TPR) {
    let e = exp(att[a + c] - mx);
    att[a + c] = e;
    sum += e;
  }
  let total = treeReduce(sum, OP_SUM, t, first, 1u);
  // Each invocation rescales the entries it wrote itself, so no barrier is needed here.
  for (var c = t; c < n; c += TPR) { att[a + c] = att[a + c] / total; }
  if (valid) {
    for (var c = n + t; c < p.T; c += TPR) { att[a + c] = 0.0; }
  }
//#endif
}
