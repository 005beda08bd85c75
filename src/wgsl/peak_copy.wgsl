// Peak memory bandwidth, for `hlm bench`'s fraction of peak: dst = src in vec4s, one per
// invocation. Bytes moved = 2 · 16 · n (one read and one write of each vec4).

//#include lib/elementwise.wgsl

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

fn elements() -> u32 { return p.n; }

fn element(i: u32) {
  dst[i] = src[i];
}
