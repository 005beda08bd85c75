// treeReduce over (value, index) pairs (lib/reduce.wgsl). OP_ARGMAX keeps the larger value, the lower
// index on ties, and NaN beats numbers (the lowest index among NaNs), so a broken model is not taken
// for a confident one. OP_SUM adds the values (for a second reduction in the same workgroup memory).
// The including shader declares RED_WIDTH and RED_GROUPS.
//#include lib/nan.wgsl
//#include lib/reduce.wgsl

struct ArgMax { v: f32, i: u32 }

alias Red = ArgMax;

const OP_ARGMAX: u32 = 0u;
const OP_SUM: u32 = 1u;

// Does b beat a?
fn better(a: ArgMax, b: ArgMax) -> bool {
  if (isNan(b.v)) { return !isNan(a.v) || b.i < a.i; }
  if (isNan(a.v)) { return false; }
  return b.v > a.v || (b.v == a.v && b.i < a.i);
}

fn combine(a: ArgMax, b: ArgMax, op: u32) -> ArgMax {
  if (op == OP_SUM) { return ArgMax(a.v + b.v, a.i); }
  if (better(a, b)) { return b; }
  return a;
}
