// Global gradient norm, pass 2, one workgroup: norm = √(Σ partials), and torch's
// clip_grad_norm_ scale = min(1, maxNorm / (norm + 1e-6)), or 1 when maxNorm is 0 (off).
// The scale goes to a GPU buffer that the optimizer reads, so clipping needs no readback.
// NORM: the norm is written too (into the scale's buffer, or with NORM_BINDING its own).
// UNSCALE (loss scaling): the gradients are the loss scale S times the true ones, so the norm
// written is ‖g‖/S, the clip is decided on it, and the scale the optimizer applies includes 1/S.
//#include lib/reduce_f32.wgsl

const WG: u32 = 256u;
const RED_WIDTH: u32 = WG;
const RED_GROUPS: u32 = 1u;
const NORM: bool = false;

struct Params { count: u32, offScale: u32, offNorm: u32, maxNorm: f32, offUnscale: u32 }

@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> scaleOut: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
//#if NORM_BINDING
@group(0) @binding(3) var<storage, read_write> normOut: array<f32>;
//#endif
//#if UNSCALE
@group(0) @binding(4) var<storage, read> unscale: array<f32>;
//#endif

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32) {
  var acc = 0.0;
  for (var i = t; i < p.count; i += WG) { acc += partials[i]; }
  var norm = sqrt(workgroupReduce(acc, OP_SUM, t));
  if (t == 0u) {
    var scale = 1.0;
//#if UNSCALE
    let lossScale = unscale[p.offUnscale];
    norm = norm / lossScale;
//#endif
    if (p.maxNorm > 0.0) { scale = min(1.0, p.maxNorm / (norm + 1e-6)); }
//#if UNSCALE
    scale = scale / lossScale;
//#endif
    scaleOut[p.offScale] = scale;
//#if NORM_BINDING
    normOut[p.offNorm] = norm;
//#else
    if (NORM) { scaleOut[p.offNorm] = norm; }
//#endif
  }
}
