// treeReduce over f32 values (lib/reduce.wgsl): OP_SUM, OP_MAX (WGSL's max, whatever it does with
// NaN) or OP_MAX_NAN (NaN wins). The including shader declares RED_WIDTH and RED_GROUPS.
//#include lib/nan.wgsl
//#include lib/reduce.wgsl

alias Red = f32;

const OP_SUM: u32 = 0u;
const OP_MAX: u32 = 1u;
const OP_MAX_NAN: u32 = 2u;

fn combine(a: f32, b: f32, op: u32) -> f32 {
  if (op == OP_MAX_NAN) { return select(max(a, b), a + b, isNan(a) || isNan(b)); }
  return select(a + b, max(a, b), op == OP_MAX);
}
