// The tiled product that matmul.wgsl, matmul_q.wgsl and crossentropy_logits.wgsl share. Each workgroup computes
// a BM x BN tile, each invocation a TM x TN register block (TM, TN: 4 or 8) made of 4x4 accumulator blocks spaced
// WG_Y·4 rows and WG_X·4 columns apart, so that neighbouring invocations read neighbouring vec4s of As/Bs (no bank
// conflicts) and write neighbouring columns. Per BK-slice of K the including shader stages A and B k-major into
// As[k][m] and Bs[k][n] (setA/setB an element, setA4/setB4 4 consecutive k), then sliceProduct accumulates it.
// The accumulators are named matrices, not an indexed array: GPU compilers keep those in registers, while a
// private array indexed in loops can end up in (slow) local memory. The host sets all five sizes.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;

const WG_X: u32 = BN / TN;
const WG_Y: u32 = BM / TM;
const THREADS: u32 = WG_X * WG_Y;

// vec4 elements so the inner loop reads 4 m's / 4 n's at once and does vec4 FMAs.
var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

fn setA(i: u32, v: f32) { As[i / 4u][i % 4u] = v; }
fn setB(i: u32, v: f32) { Bs[i / 4u][i % 4u] = v; }

// Row mm of the A tile (column nn of B) at k = kk..kk+3.
fn setA4(kk: u32, mm: u32, v: vec4<f32>) {
  setA(kk * BM + mm, v.x); setA((kk + 1u) * BM + mm, v.y);
  setA((kk + 2u) * BM + mm, v.z); setA((kk + 3u) * BM + mm, v.w);
}
fn setB4(kk: u32, nn: u32, v: vec4<f32>) {
  setB(kk * BN + nn, v.x); setB((kk + 1u) * BN + nn, v.y);
  setB((kk + 2u) * BN + nn, v.z); setB((kk + 3u) * BN + nn, v.w);
}

// One k-step of a 4x4 accumulator block: four rows (a) times four columns (b); (*c)[i] holds row i of the block.
fn rank1(a: vec4<f32>, b: vec4<f32>, c: ptr<function, mat4x4<f32>>) {
  (*c)[0] = fma(vec4<f32>(a.x), b, (*c)[0]);
  (*c)[1] = fma(vec4<f32>(a.y), b, (*c)[1]);
  (*c)[2] = fma(vec4<f32>(a.z), b, (*c)[2]);
  (*c)[3] = fma(vec4<f32>(a.w), b, (*c)[3]);
}

// The staged slice into the invocation's blocks: c00 rows block 0 x columns block 0, c01 columns block 1 (TN == 8),
// c10 rows block 1 (TM == 8), c11 both. ta (tb) is the vec4 index of its first rows in As[k] (columns in Bs[k]).
fn sliceProduct(ta: u32, tb: u32, c00: ptr<function, mat4x4<f32>>, c01: ptr<function, mat4x4<f32>>,
                c10: ptr<function, mat4x4<f32>>, c11: ptr<function, mat4x4<f32>>) {
  for (var kk = 0u; kk < BK; kk++) {
    let a0 = As[kk * (BM / 4u) + ta];
    let b0 = Bs[kk * (BN / 4u) + tb];
    rank1(a0, b0, c00);
    if (TN == 8u) { rank1(a0, Bs[kk * (BN / 4u) + WG_X + tb], c01); }
    if (TM == 8u) {
      let a1 = As[kk * (BM / 4u) + WG_Y + ta];
      rank1(a1, b0, c10);
      if (TN == 8u) { rank1(a1, Bs[kk * (BN / 4u) + WG_X + tb], c11); }
    }
  }
}
