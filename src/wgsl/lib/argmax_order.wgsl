// The order argmax uses (lib/argmax.wgsl, the cross-entropy head): the larger value wins, the lower
// index on ties, and NaN beats numbers (the lowest index among NaNs), so a broken model is not taken
// for a confident one.
//#include lib/nan.wgsl

struct ArgMax { v: f32, i: u32 }

// Does b beat a?
fn better(a: ArgMax, b: ArgMax) -> bool {
  if (isNan(b.v)) { return !isNan(a.v) || b.i < a.i; }
  if (isNan(a.v)) { return false; }
  return b.v > a.v || (b.v == a.v && b.i < a.i);
}
