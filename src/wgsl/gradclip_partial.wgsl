// Global gradient norm, pass 1: partials[w] = Σ g² over workgroup w's block of CHUNK = WG·PER
// consecutive elements (each invocation a strided slice of it, then a fixed tree). With pass
// 2 (gradclip_finish) the order of every addition depends on n alone: no atomics, and the
// norm repeats bit for bit. Where the gradients exceed the adapter's storage-binding limit
// the pass runs as several dispatches over windows of whole blocks (n is the window's
// length, firstGroup its first block): the same blocks, the same sums. WG and PER are the
// host's (gradclip.ts), which needs CHUNK for its windows.
// VEC4 (n and offG multiples of 4): each invocation reads 4 floats a load, PER/4 loads.
//#include lib/rows.wgsl
//#include lib/reduce_f32.wgsl

const WG: u32 = 256u;
const PER: u32 = 16u;
const CHUNK: u32 = WG * PER;
const RED_WIDTH: u32 = WG;
const RED_GROUPS: u32 = 1u;
const VEC4: bool = false;

//#if VEC4
alias V = vec4<f32>;
const UNIT: u32 = 4u;
fn lanes(x: V) -> f32 { return (x.x + x.y) + (x.z + x.w); }
//#else
alias V = f32;
const UNIT: u32 = 1u;
fn lanes(x: V) -> f32 { return x; }
//#endif

struct Params { n: u32, offG: u32, firstGroup: u32 }

@group(0) @binding(0) var<storage, read> grads: array<V>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn rows() -> u32 { return (p.n + CHUNK - 1u) / CHUNK; }

fn row(w: u32, t: u32) {
  let start = w * CHUNK / UNIT; // in units
  var acc = V(0.0);
  for (var k = 0u; k < PER / UNIT; k++) {
    let i = start + k * WG + t;
    if (i * UNIT < p.n) {
      let g = grads[p.offG / UNIT + i];
      acc += g * g;
    }
  }
  let total = workgroupReduce(lanes(acc), OP_SUM, t);
  if (t == 0u) { partials[p.firstGroup + w] = total; }
}
