// The batch loss as one scalar on the GPU: out = scale · Σ losses[0..n) (ACCUM: out += ...),
// scale being the loss scale (1 / counted targets) from a GPU buffer, or 1 without one. One
// workgroup, a strided fold and a fixed tree: bit-for-bit repeatable. Only this scalar is
// ever read back, and only when it is printed.
//#include lib/reduce_f32.wgsl

const WG: u32 = 256u;
const RED_WIDTH: u32 = WG;
const RED_GROUPS: u32 = 1u;
const ACCUM: bool = false;
// The scale sits in `out`'s own buffer (read through that binding: WebGPU forbids a buffer
// bound both writable and read-only in one dispatch).
const SCALE_IN_OUT: bool = false;

struct Params { n: u32, offLosses: u32, offOut: u32, offScale: u32 }

@group(0) @binding(0) var<storage, read> losses: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
//#if SCALE_BINDING
@group(0) @binding(3) var<storage, read> lossScale: array<f32>;
//#endif

fn scale() -> f32 {
//#if SCALE_BINDING
  return lossScale[p.offScale];
//#else
  if (SCALE_IN_OUT) { return out[p.offScale]; }
  return 1.0;
//#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32) {
  var acc = 0.0;
  for (var i = t; i < p.n; i += WG) { acc += losses[p.offLosses + i]; }
  let total = workgroupReduce(acc, OP_SUM, t);
  if (t == 0u) {
    var v = total * scale();
    if (ACCUM) { v += out[p.offOut]; }
    out[p.offOut] = v;
  }
}
