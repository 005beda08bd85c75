// Row gather and scatter: GATHER dst[i, :] = src[idx[i], :]; otherwise dst[idx[i], :] = src[i, :]
// (scatter with distinct indices: each destination row has one writer). One invocation per
// unit of the n x d rows moved: 4 elements with VEC4 (d and both offsets multiples of 4, read and
// written as vec4s), else 1.

//#include lib/elementwise.wgsl

const GATHER: bool = true;

//#if VEC4
alias V = vec4<f32>;
const UNIT: u32 = 4u;
//#else
alias V = f32;
const UNIT: u32 = 1u;
//#endif

struct Params { n: u32, d: u32, offSrc: u32, offDst: u32, offIdx: u32 }

@group(0) @binding(0) var<storage, read> src: array<V>;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<V>;
@group(0) @binding(3) var<uniform> p: Params;

fn elements() -> u32 { return p.n * p.d / UNIT; }

fn element(u: u32) {
  let e = u * UNIT;
  let i = e / p.d;
  let c = e % p.d;
  let j = idx[p.offIdx + i];
  if (GATHER) {
    dst[(p.offDst + e) / UNIT] = src[(p.offSrc + j * p.d + c) / UNIT];
  } else {
    dst[(p.offDst + j * p.d + c) / UNIT] = src[(p.offSrc + e) / UNIT];
  }
}
