// Attention softmax, in place over rows of already scaled scores att [B, H, T, T] (one row a
// query): row (b, h, i) keeps its first n entries, n = i + 1 when CAUSAL (else T), capped at
// lengths[b] with a key padding mask; there p = exp(s - max) / sum, and 0 past n. A row that
// sees no key (n = 0) becomes all zeros, not NaN.
//
// A workgroup handles ROWS rows with TPR invocations each (TPR a power of two): each strides
// over its row, then the TPR partial results combine in a fixed tree in workgroup memory
// (skipped when TPR = 1), so results repeat bit for bit.

const ROWS: u32 = 4u;
const TPR: u32 = 32u;
const CAUSAL: bool = true;
const LENGTHS: bool = false;
const LOWEST: f32 = -3.4028234e38; // the lowest finite f32 (the identity of max here)

struct Params {
  rows: u32, T: u32, rowsPerBatch: u32, offAtt: u32,
  offLen: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> att: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
//#if LENGTHS
@group(0) @binding(2) var<storage, read> lengths: array<u32>;
//#endif

var<workgroup> part: array<f32, ROWS * TPR>;

// How many keys (a prefix of the row) query `row` may see.
fn visible(row: u32) -> u32 {
  var n = p.T;
  if (CAUSAL) { n = row % p.T + 1u; }
//#if LENGTHS
  n = min(n, lengths[p.offLen + row / p.rowsPerBatch]);
//#endif
  return n;
}

// Combine the TPR partial values of this row (max or sum); every invocation gets the result.
fn rowReduce(x: f32, slot: u32, t: u32, isMax: bool) -> f32 {
  if (TPR == 1u) { return x; }
  part[slot + t] = x;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      let a = part[slot + t];
      let b = part[slot + t + s];
      part[slot + t] = select(a + b, max(a, b), isMax);
    }
    workgroupBarrier();
  }
  let r = part[slot];
  workgroupBarrier(); // before part is reused
  return r;
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
  let base = p.offAtt + row * p.T;
  var n = 0u;
  if (valid) { n = visible(row); }
  let slot = lid.y * TPR;

  var m = LOWEST;
  for (var c = t; c < n; c += TPR) { m = max(m, att[base + c]); }
  let mx = rowReduce(m, slot, t, true);

  var sum = 0.0;
  for (var c = t; c < n; c += TPR) {
    let e = exp(att[base + c] - mx);
    att[base + c] = e;
    sum += e;
  }
  let total = rowReduce(sum, slot, t, false);

  // Each invocation rescales the entries it wrote itself, so no barrier is needed here.
  for (var c = t; c < n; c += TPR) { att[base + c] = att[base + c] / total; }
  if (valid) {
    for (var c = n + t; c < p.T; c += TPR) { att[base + c] = 0.0; }
  }
}
