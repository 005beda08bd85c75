// Row gather and scatter: GATHER dst[i, :] = src[idx[i], :]; otherwise dst[idx[i], :] = src[i, :]
// (scatter with distinct indices: each destination row has one writer). One invocation per
// element of the n x d rows moved.

//#include lib/elementwise.wgsl

const GATHER: bool = true;

struct Params { n: u32, d: u32, offSrc: u32, offDst: u32, offIdx: u32 }

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn elements() -> u32 { return p.n * p.d; }

fn element(e: u32) {
  let i = e / p.d;
  let c = e % p.d;
  let j = idx[p.offIdx + i];
  if (GATHER) {
    dst[p.offDst + e] = src[p.offSrc + j * p.d + c];
  } else {
    dst[p.offDst + j * p.d + c] = src[p.offSrc + e];
  }
}
