// What the fused attention shaders share (attention_forward, attention_dq, attention_dkv): the entry
// point, where a head's q, k and v sit in GPT-2's packed c_attn rows, which rows (queries, or keys
// in the dk/dv pass) of which head a workgroup owns, which keys a query sees, and vec4 reads of a
// head's row. The including shader defines fn block(blk: Block, t: u32), invocation t's work on
// the workgroup's block.
// A workgroup owns WG·QR consecutive rows of one head of one batch row: invocation t has rows
// first + r·WG + t for r < QR, so that each block of keys (or queries) read serves QR rows.
// The including shader declares a Params with B, T, H, d, offQkv and offLen bound as `p` and, with
// LENGTHS, the u32 binding `lengths`; the packed rows are binding 0, qkv.
//#if NATIVE_F16
enable f16;
//#endif
//#include lib/rows.wgsl

// The host's (src/kernels/attention.ts): the head width HD and HD4 = ⌈HD/4⌉; the tile (WG
// invocations of QR rows each, the other side walked BC rows at a time, STAGE: through workgroup
// memory); CAUSAL; LENGTHS (a key padding mask); VEC4 (a head's channels and every offset a multiple
// of 4: rows are read 4 floats a load, which llvmpipe turns into one per-lane loop instead of four);
// F16 (qkv holds packed halves, two to a u32 word, element 2i in the low half, offsets counted in
// halves: each is unpacked to f32 as it is read, and all arithmetic stays f32; with VEC4 a load is
// the two words of 4 halves). NATIVE_F16 (with F16; the shader-f16 path, Gpu.f16Kernels): the same halves read
// through WGSL's f16 type, a vec4<f16> or one f16 a load.
const HD: u32 = 64u;
const HD4: u32 = 16u;
const QR: u32 = 1u;
const WG: u32 = 64u;
const BC: u32 = 16u;
const CAUSAL: bool = true;
const LENGTHS: bool = false;
const STAGE: bool = false;
const VEC4: bool = false;
const F16: bool = false;
const NATIVE_F16: bool = false;

//#if F16
//#if NATIVE_F16
//#if VEC4
@group(0) @binding(0) var<storage, read> qkv: array<vec4<f16>>;
//#else
@group(0) @binding(0) var<storage, read> qkv: array<f16>;
//#endif
//#else
//#if VEC4
@group(0) @binding(0) var<storage, read> qkv: array<vec2<u32>>;
//#else
@group(0) @binding(0) var<storage, read> qkv: array<u32>;
//#endif
//#endif
//#else
//#if VEC4
@group(0) @binding(0) var<storage, read> qkv: array<vec4<f32>>;
//#else
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
//#endif
//#endif

struct Block { b: u32, h: u32, first: u32 }

// Workgroups a head of a batch row takes.
fn blocksPerHead() -> u32 { return (p.T + WG * QR - 1u) / (WG * QR); }

fn blockOf(g: u32) -> Block {
  let per = blocksPerHead();
  let bh = g / per;
  return Block(bh / p.H, bh % p.H, (g % per) * WG * QR);
}

// Invocation t's row r of the block (possibly ≥ T), and the block's last row below T.
fn rowOf(blk: Block, r: u32, t: u32) -> u32 { return blk.first + r * WG + t; }
fn lastRow(blk: Block) -> u32 { return min(blk.first + WG * QR, p.T) - 1u; }

// Element offset of head h's q (part 0), k (1) or v (2) at position t of batch row b when stride is
// 3 (qkv, dqkv); with stride 1 and part 0, of the head's slice of a [B, T, d] row (out, dout).
fn packedAt(part: u32, stride: u32, b: u32, t: u32, h: u32) -> u32 {
  return (b * p.T + t) * stride * p.d + part * p.d + h * HD;
}

// Keys [0, n) that are not padding in batch row b.
fn validKeys(b: u32) -> u32 {
  var n = p.T;
//#if LENGTHS
  n = min(n, lengths[p.offLen + b]);
//#endif
  return n;
}

// Keys [0, n) query i of batch row b sees.
fn keysSeen(b: u32, i: u32) -> u32 {
  var n = validKeys(b);
  if (CAUSAL) { n = min(n, i + 1u); }
  return n;
}

// Row of the [B, H, T] per-query statistics (log-sum-exp, rowsum(dO ∘ O)).
fn statAt(b: u32, h: u32, i: u32) -> u32 { return (b * p.H + h) * p.T + i; }

// Channels 4c .. 4c + 3 of the head row at element offset a of qkv (0 past HD).
fn qkv4(a: u32, c: u32) -> vec4<f32> {
//#if F16
//#if VEC4
//#if NATIVE_F16
  return vec4<f32>(qkv[a / 4u + c]);
//#else
  let w = qkv[a / 4u + c];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
//#endif
//#else
  var x = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    let e = a + 4u * c + k;
//#if NATIVE_F16
    if (4u * c + k < HD) { x[k] = f32(qkv[e]); }
//#else
    if (4u * c + k < HD) { x[k] = unpack2x16float(qkv[e / 2u])[e % 2u]; }
//#endif
  }
  return x;
//#endif
//#else
//#if VEC4
  return qkv[a / 4u + c];
//#else
  var x = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    if (4u * c + k < HD) { x[k] = qkv[a + 4u * c + k]; }
  }
  return x;
//#endif
//#endif
}

fn sum4(x: vec4<f32>) -> f32 { return (x.x + x.y) + (x.z + x.w); }

// The entry point is lib/rows.wgsl's, a block a "row" (a workgroup past the last returns at once, so
// block() may wait at barriers).
fn rows() -> u32 { return p.B * p.H * blocksPerHead(); }
fn row(g: u32, t: u32) { block(blockOf(g), t); }
