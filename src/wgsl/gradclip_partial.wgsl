// Global gradient norm, pass 1: partials[w] = Σ g² over workgroup w's block of CHUNK = WG·PER
// consecutive elements (each invocation a strided slice of it, then a fixed tree). With pass
// 2 (gradclip_finish) the order of every addition depends on n alone: no atomics, and the
// norm repeats bit for bit. Where the gradients exceed the adapter's storage-binding limit
// the pass runs as several dispatches over windows of whole blocks (n is the window's
// length, firstGroup its first block): the same blocks, the same sums.

const WG: u32 = 256u;
const PER: u32 = 16u;

struct Params { n: u32, offG: u32, firstGroup: u32, _pad0: u32 }

@group(0) @binding(0) var<storage, read> grads: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let w = wg.y * nwg.x + wg.x;
  let start = w * WG * PER;
  if (start >= p.n) { return; } // uniform per workgroup
  var acc = 0.0;
  for (var k = 0u; k < PER; k++) {
    let i = start + k * WG + t;
    if (i < p.n) {
      let g = grads[p.offG + i];
      acc += g * g;
    }
  }
  part[t] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { part[t] += part[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) { partials[p.firstGroup + w] = part[0]; }
}
