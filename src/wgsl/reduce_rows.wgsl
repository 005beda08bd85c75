// Row reductions, one workgroup a row of x [rows, cols]: out[r] = the sum of row r, its maximum
// (MAX; NaN wins), or with ARGMAX the first index of its largest value (NaN counts as largest, so
// a broken model is not mistaken for a confident one; greedy decoding reads back one u32 a row
// instead of a row of logits). The maximum is the argmax's value. Each invocation folds a strided
// slice, then a fixed tree in workgroup memory: the same answer every run (no atomics).
//#include lib/rows.wgsl
//#include lib/argmax.wgsl

const WG: u32 = 256u;
const RED_WIDTH: u32 = WG;
const RED_GROUPS: u32 = 1u;
const MAX: bool = false;
const ARGMAX: bool = false;
const OP: u32 = select(OP_SUM, OP_ARGMAX, MAX || ARGMAX);

struct Params { rows: u32, cols: u32, offX: u32, offOut: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
//#if ARGMAX
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
//#else
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
//#endif
@group(0) @binding(2) var<uniform> p: Params;

fn rows() -> u32 { return p.rows; }

fn row(r: u32, t: u32) {
  let base = p.offX + r * p.cols;
  // The identity of a sum; for a maximum, any element of the row.
  var acc = ArgMax(select(0.0, x[base], OP == OP_ARGMAX), 0u);
  for (var c = t; c < p.cols; c += WG) { acc = combine(acc, ArgMax(x[base + c], c), OP); }
  let top = workgroupReduce(acc, OP, t);
  if (t == 0u) {
//#if ARGMAX
    out[p.offOut + r] = top.i;
//#else
    out[p.offOut + r] = top.v;
//#endif
  }
}
