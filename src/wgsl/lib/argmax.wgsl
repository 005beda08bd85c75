// treeReduce over (value, index) pairs (lib/reduce.wgsl). OP_ARGMAX keeps the winner of
// lib/argmax_order.wgsl's order (the larger value, the lower index on ties, NaN first). OP_SUM adds
// the values (for a second reduction in the same workgroup memory).
// The including shader declares RED_WIDTH and RED_GROUPS.
//#include lib/argmax_order.wgsl
//#include lib/reduce.wgsl

alias Red = ArgMax;

const OP_ARGMAX: u32 = 0u;
const OP_SUM: u32 = 1u;

fn combine(a: ArgMax, b: ArgMax, op: u32) -> ArgMax {
  if (op == OP_SUM) { return ArgMax(a.v + b.v, a.i); }
  if (better(a, b)) { return b; }
  return a;
}
