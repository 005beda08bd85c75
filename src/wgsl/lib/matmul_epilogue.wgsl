// How every matmul kernel writes an element of C (matmul.wgsl, matmul_registers.wgsl, and the split-K sum):
//   v = alpha·acc + beta·C  [+ bias[col]]  [+ R at C's place]  → C;   [gelu(v) → G at C's place]
// so that a linear layer (product, bias, then a residual add or GELU) is one dispatch. p.ep says which of the
// bracketed terms apply (EP_BIAS | EP_RESIDUAL | EP_GELU); with GELU, C keeps the pre-activation, which the
// backward needs. R and G are laid out like C from their own offsets (p.offR, p.offG); the host binds a small
// placeholder for each one unused, since every binding a shader declares must be bound.
// Needs from the including shader: p.alpha, p.beta, p.offC, p.ep, p.offBias, p.offR, p.offG, C, and C_VEC4.
//#include lib/gelu.wgsl

const EP_BIAS: u32 = 1u;
const EP_RESIDUAL: u32 = 2u;
const EP_GELU: u32 = 4u;

@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> R: array<f32>;
@group(0) @binding(6) var<storage, read_write> G: array<f32>;

//#if C_VEC4
// C as vec4s (the includer declares C: array<vec4<f32>>; N, offC and strideC multiples of 4): C[idx4], columns
// col..col+3, from their accumulated dot products, finish's arithmetic on 4 at once. One vec4 store instead of 4
// scalar ones: on llvmpipe each store is a loop over the SIMD lanes.
fn finish4(idx4: u32, col: u32, acc: vec4<f32>) {
  var v = p.alpha * acc;
  if (p.beta != 0.0) { v = fma(vec4<f32>(p.beta), C[idx4], v); }
  if ((p.ep & EP_BIAS) != 0u) {
    let b = p.offBias + col;
    v += vec4<f32>(bias[b], bias[b + 1u], bias[b + 2u], bias[b + 3u]);
  }
  let e = idx4 * 4u - p.offC;
  if ((p.ep & EP_RESIDUAL) != 0u) {
    let r = p.offR + e;
    v += vec4<f32>(R[r], R[r + 1u], R[r + 2u], R[r + 3u]);
  }
  C[idx4] = v;
  if ((p.ep & EP_GELU) != 0u) {
    let g = p.offG + e;
    G[g] = gelu(v.x);
    G[g + 1u] = gelu(v.y);
    G[g + 2u] = gelu(v.z);
    G[g + 3u] = gelu(v.w);
  }
}
//#else
// C[idx] (column col) from its accumulated dot product.
fn finish(idx: u32, col: u32, acc: f32) {
  var v = p.alpha * acc;
  // beta == 0 must not read C: it may hold garbage (NaN * 0 is NaN).
  if (p.beta != 0.0) { v = fma(p.beta, C[idx], v); }
  if ((p.ep & EP_BIAS) != 0u) { v += bias[p.offBias + col]; }
  if ((p.ep & EP_RESIDUAL) != 0u) { v += R[p.offR + idx - p.offC]; }
  C[idx] = v;
  if ((p.ep & EP_GELU) != 0u) { G[p.offG + idx - p.offC] = gelu(v); }
}
//#endif
