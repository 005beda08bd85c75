// Peak memory bandwidth, for `hlm bench`'s fraction of peak: dst = src in vec4s, one per
// invocation. Bytes moved = 2 · 16 · n (one read and one write of each vec4).

const WG: u32 = 256u;

struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i < p.n) { dst[i] = src[i]; }
}
