// The step guard: decides on the GPU, after the gradient norm and before the optimizer, whether
// this step's update is applied. A step whose loss or gradient norm is not finite is skipped:
// guard[0], the flag the optimizers read (lib/optimizer.wgsl, SKIP), becomes 1 and they return
// before touching a parameter or a moment. This is the one place that decides whether an update
// happens: a mixed-precision overflow check belongs here too, setting the same flag. Nothing is
// read back for it; the host learns of a skipped step when it next reads the loss history.
// STICKY: once a step was skipped every later one is too, until the host clears the guard, so
// that the state on the GPU stays the last finite one until training stops at its next readback.
// Finiteness is tested on the bits: compilers may assume floats are never NaN or Inf.

const STICKY: bool = true;

struct Params { offNorm: u32 }

// [0] skip this step, [1] steps skipped so far, [2] this step's loss (f32 bits, copied in).
@group(0) @binding(0) var<storage, read_write> guard: array<u32>;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn finiteBits(bits: u32) -> bool { return (bits & 0x7f800000u) != 0x7f800000u; }

@compute @workgroup_size(1)
fn main() {
  var skip = !(finiteBits(guard[2]) && finiteBits(bitcast<u32>(norm[p.offNorm])));
  if (STICKY && guard[1] != 0u) { skip = true; }
  guard[0] = select(0u, 1u, skip);
  guard[1] = guard[1] + select(0u, 1u, skip);
}
