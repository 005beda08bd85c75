// Global gradient norm, pass 1: partials[w] = Σ g² over workgroup w's block of CHUNK = WG·PER
// consecutive elements (each invocation a strided slice of it, then a fixed tree). With pass
// 2 (gradclip_finish) the order of every addition depends on n alone: no atomics, and the
// norm repeats bit for bit. Where the gradients exceed the adapter's storage-binding limit
// the pass runs as several dispatches over windows of whole blocks (n is the window's
// length, firstGroup its first block): the same blocks, the same sums. WG and PER are the
// host's (gradclip.ts), which needs CHUNK for its windows.
// VEC4 (n and offG multiples of 4): each invocation reads 4 floats a load, PER/4 loads.
// FLAGS: also flags[offFlags + firstGroup + w] = 1 when block w holds an element that is not ±0 (NaN included), else 0,
// for the optimizer, which then steps that block without reading its gradients (see
// lib/optimizer.wgsl). The tree carries the flag beside the sum: the sum's order is unchanged.
//#include lib/rows.wgsl

// (Σ g², 1 when some g is not ±0)
alias Red = vec2<f32>;
fn combine(a: Red, b: Red, op: u32) -> Red { return vec2<f32>(a.x + b.x, max(a.y, b.y)); }
//#include lib/reduce.wgsl

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

struct Params { n: u32, offG: u32, firstGroup: u32, offFlags: u32 }

@group(0) @binding(0) var<storage, read> grads: array<V>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
//#if FLAGS
@group(0) @binding(3) var<storage, read_write> flags: array<u32>;
//#endif

fn rows() -> u32 { return (p.n + CHUNK - 1u) / CHUNK; }

fn row(w: u32, t: u32) {
  let start = w * CHUNK / UNIT; // in units
  var acc = V(0.0);
  var nonzero = false;
  for (var k = 0u; k < PER / UNIT; k++) {
    let i = start + k * WG + t;
    if (i * UNIT < p.n) {
      let g = grads[p.offG / UNIT + i];
      acc += g * g;
      nonzero = nonzero || any(g != V(0.0));
    }
  }
  let total = workgroupReduce(Red(lanes(acc), select(0.0, 1.0, nonzero)), 0u, t);
  if (t == 0u) {
    partials[p.firstGroup + w] = total.x;
//#if FLAGS
    flags[p.offFlags + p.firstGroup + w] = select(0u, 1u, total.y > 0.0);
//#endif
  }
}
