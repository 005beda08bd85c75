// What the optimizers (optimizer_adamw.wgsl, optimizer_sgd.wgsl) share: one invocation a unit of
// a flat parameter range, each gradient multiplied by an optional scale read from a GPU buffer
// (global-norm clipping's), and weight decay only where an optional mask says so. The mask has one
// bit per 64-element block of the parameter range (bit b%32 of word b/32 for block b): the layout
// starts every tensor on a 64-float boundary. Where a buffer exceeds the adapter's storage-binding
// limit the range runs as several dispatches, each over a bound window of it; maskBase is the
// window's first element in the range. SKIP: a u32 flag (step_guard.wgsl's) that, when set, makes
// the step touch nothing: a skipped update has no elements. The including shader's Params has n,
// offP, offG, offMask, offScale and maskBase, and it defines fn element(i: u32), the step for unit i.
// VEC4 (n and every offset a multiple of 4): an invocation steps a unit of 4 elements, read and
// written 4 floats at a time (llvmpipe turns each load into one per-lane loop instead of four); the
// arithmetic is elementwise, so the same code serves a unit of one element (V = f32).
//#include lib/elementwise.wgsl

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

fn elements() -> u32 {
//#if SKIP
  if (skip[0] != 0u) { return 0u; }
//#endif
  return p.n / UNIT;
}

fn gradient(i: u32) -> V {
  var g = grads[p.offG / UNIT + i];
//#if SCALE
  g = g * gscale[p.offScale];
//#endif
  return g;
}

// A unit never straddles two 64-element blocks of the mask.
fn decays(i: u32) -> bool {
//#if MASK
  let block = (p.maskBase + i * UNIT) / 64u;
  return (mask[p.offMask + block / 32u] & (1u << (block % 32u))) != 0u;
//#else
  return true;
//#endif
}
