// The step guard: decides on the GPU, after the gradient norm and before the optimizer, whether
// this step's update is applied. A step whose loss or gradient norm is not finite is skipped:
// guard[0], the flag the optimizers read (lib/optimizer.wgsl, SKIP), becomes 1 and they return
// before touching a parameter or a moment. This is the one place that decides whether an update
// happens. Nothing is read back for it; the host learns of a skipped step when it next reads the
// loss history.
// STICKY: once a step was skipped for a non-finite loss or norm every later one is too, until the
// host clears the guard, so that the state on the GPU stays the last finite one until training
// stops at its next readback.
// SCALING (mixed precision, loss scaling): the gradients were computed from the loss times the
// scale in guard[3] (the heads read it there) and the norm is already unscaled (gradclip_finish).
// A finite loss with a non-finite norm is then an f16 overflow, not a divergence: the step is
// skipped without sticking, and a dynamic scale (growth > 0) halves; after `growth` applied steps
// in a row it doubles. An overflow at a scale of 1 or less is a divergence: the gradients
// overflow unscaled. With growth 0 the scale is fixed (--loss-scale N).
// Finiteness is tested on the bits: compilers may assume floats are never NaN or Inf.

const STICKY: bool = true;
const SCALING: bool = false;

struct Params { offNorm: u32, growth: u32 }

// [0] skip this step, [1] steps skipped as non-finite so far, [2] this step's loss (f32 bits, copied
// in), [3] loss scale (f32 bits), [4] applied steps since the scale last changed, [5] overflow skips.
@group(0) @binding(0) var<storage, read_write> guard: array<u32>;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn finiteBits(bits: u32) -> bool { return (bits & 0x7f800000u) != 0x7f800000u; }

@compute @workgroup_size(1)
fn main() {
  let lossOk = finiteBits(guard[2]);
  let normOk = finiteBits(bitcast<u32>(norm[p.offNorm]));
  let scale = bitcast<f32>(guard[3]);
  let overflow = SCALING && lossOk && !normOk && scale > 1.0;
  var diverged = !(lossOk && normOk) && !overflow;
  if (STICKY && guard[1] != 0u) { diverged = true; }
  let skip = diverged || overflow;
  guard[0] = select(0u, 1u, skip);
  guard[1] = guard[1] + select(0u, 1u, diverged);
  if (!SCALING || diverged) { return; }
  if (overflow) {
    guard[5] = guard[5] + 1u;
    if (p.growth > 0u) {
      guard[3] = bitcast<u32>(max(scale * 0.5, 1.0));
      guard[4] = 0u;
    }
    return;
  }
  guard[4] = guard[4] + 1u;
  if (p.growth > 0u && guard[4] >= p.growth) {
    guard[3] = bitcast<u32>(min(scale * 2.0, 16777216.0));
    guard[4] = 0u;
  }
}
