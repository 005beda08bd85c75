// Row gather and scatter: GATHER dst[i, :] = src[idx[i], :]; otherwise dst[idx[i], :] = src[i, :]
// (scatter with distinct indices: each destination row has one writer). One invocation per
// element of the n x d rows moved.

const WG: u32 = 256u;
const GATHER: bool = true;

struct Params { n: u32, d: u32, offSrc: u32, offDst: u32, offIdx: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.y * nwg.x * WG + gid.x;
  if (e >= p.n * p.d) { return; }
  let i = e / p.d;
  let c = e % p.d;
  let j = idx[p.offIdx + i];
  if (GATHER) {
    dst[p.offDst + e] = src[p.offSrc + j * p.d + c];
  } else {
    dst[p.offDst + j * p.d + c] = src[p.offSrc + e];
  }
}
