// What the optimizers (optimizer_adamw.wgsl, optimizer_sgd.wgsl) share: PER units of a flat
// parameter range an invocation, each gradient multiplied by an optional scale read from a GPU buffer
// (global-norm clipping's), and weight decay only where an optional mask says so. The mask has one
// bit per 64-element block of the parameter range (bit b%32 of word b/32 for block b): the layout
// starts every tensor on a 64-float boundary. Where a buffer exceeds the adapter's storage-binding
// limit the range runs as several dispatches, each over a bound window of it; maskBase is the
// window's first element in the range. SKIP: a u32 flag (step_guard.wgsl's) that, when set, makes
// the step touch nothing: a skipped update has no elements. The including shader's Params has n,
// offP, offG, offMask, offScale and maskBase (and offFlags with ZERO_FLAGS), and it defines
// fn element(i: u32, g: V, decay: bool), the step for unit i with its scaled gradient g, decaying or not.
// ZERO_FLAGS: a u32 per ZCHUNK elements of the range (gradclip_partial.wgsl's flags, over the same
// gradients), 0 where they are all ±0: such a chunk is stepped with g = 0 and its gradients are not read.
// For AdamW that is bit for bit the same step (a gradient of −0 gives the same moments as +0), and most
// of a large vocabulary's embedding rows have no gradient in a step.
// VEC4 (n and every offset a multiple of 4): an invocation steps units of 4 elements, read and
// written 4 floats at a time (llvmpipe turns each load into one per-lane loop instead of four); the
// arithmetic is elementwise, so the same code serves a unit of one element (V = f32).
// Workgroup w covers units [w·WG·PER, (w+1)·WG·PER), invocation t the units t + k·WG of it (WG and PER
// the host's, src/kernels/optimizer.ts).
//#include lib/grid.wgsl

const WG: u32 = 256u;
const PER: u32 = 1u;
const ZCHUNK: u32 = 4096u;

//#if VEC4
alias V = vec4<f32>;
const UNIT: u32 = 4u;
//#else
alias V = f32;
const UNIT: u32 = 1u;
//#endif

@group(0) @binding(0) var<storage, read_write> params: array<V>;
@group(0) @binding(1) var<storage, read> grads: array<V>;
//#if MASK
@group(0) @binding(8) var<storage, read> mask: array<u32>;
//#endif
//#if SCALE
@group(0) @binding(9) var<storage, read> gscale: array<f32>;
//#endif
//#if SKIP
@group(0) @binding(10) var<storage, read> skip: array<u32>;
//#endif
//#if ZERO_FLAGS
@group(0) @binding(11) var<storage, read> zeroFlags: array<u32>;
//#endif

fn elements() -> u32 {
//#if SKIP
  if (skip[0] != 0u) { return 0u; }
//#endif
  return p.n / UNIT;
}

fn gradientScale() -> f32 {
//#if SCALE
  return gscale[p.offScale];
//#else
  return 1.0;
//#endif
}

fn gradient(i: u32, s: f32) -> V {
  var g = grads[p.offG / UNIT + i];
//#if SCALE
  g = g * s;
//#endif
  return g;
}

// Whether the workgroup's units (all in one chunk: the host makes WG·PER·UNIT divide ZCHUNK) may have gradients.
fn gradientsInChunk(base: u32) -> bool {
//#if ZERO_FLAGS
  return zeroFlags[p.offFlags + (p.maskBase + base * UNIT) / ZCHUNK] != 0u;
//#else
  return true;
//#endif
}

// The mask word of the workgroup's units: they all lie in one (the host makes WG·PER·UNIT divide 32·64
// and starts every window on a multiple of it), so each invocation reads it once.
fn maskWord(base: u32) -> u32 {
//#if MASK
  return mask[p.offMask + (p.maskBase + base * UNIT) / (32u * 64u)];
//#else
  return 0u;
//#endif
}

// A unit never straddles two 64-element blocks of the mask.
fn decays(i: u32, word: u32) -> bool {
//#if MASK
  let block = (p.maskBase + i * UNIT) / 64u;
  return (word & (1u << (block % 32u))) != 0u;
//#else
  return true;
//#endif
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let n = elements();
  let base = groupIndex(wg, nwg) * (WG * PER);
  if (base >= n) { return; } // the same for the whole workgroup
  let s = gradientScale();
  let word = maskWord(base);
  if (gradientsInChunk(base)) {
    for (var k = 0u; k < PER; k++) {
      let i = base + k * WG + t;
      if (i < n) { element(i, gradient(i, s), decays(i, word)); }
    }
  } else {
    for (var k = 0u; k < PER; k++) {
      let i = base + k * WG + t;
      if (i < n) { element(i, V(0.0), decays(i, word)); }
    }
  }
}
