// Reading a weight matrix W [rows, K] stored by rows in a u32 array (src/kernels/matmul-q.ts says how the host
// lays it out). Each row is packed along K, padded with zero codes to a whole word (Q4: a whole group of 32):
//   F16   two halves a word (unpack2x16float, core WGSL: no shader-f16 needed), no scale
//   INT8  four signed bytes a word, low byte first; one f32 scale per row: w = q·s
//   Q4    eight 4-bit codes a word, low nibble first; one f16 scale per group of 32 along K, two a word:
//         w = (q − 8)·s (llama.cpp's Q4_0 arithmetic; not its byte order)
// The host sets the format: one of F16, INT8 and Q4 true. The including shader declares the binding
// `W: array<u32>` and in `p` the word offsets offQ (codes) and offS (scales) and rowWords (words per row).

const F16: bool = false;
const INT8: bool = true;
const Q4: bool = false;

const PER_WORD: u32 = select(select(8u, 4u, INT8), 2u, F16);

// The scale of the codes in word `word` of row `row`.
fn quantScale(row: u32, word: u32) -> f32 {
  if (INT8) { return bitcast<f32>(W[p.offS + row]); }
  if (Q4) {
    let i = row * (p.rowWords / 4u) + word / 4u;
    return unpack2x16float(W[p.offS + i / 2u])[i % 2u];
  }
  return 1.0;
}

// Code j (0 ≤ j < PER_WORD) of word w, unscaled.
fn quantCode(w: u32, j: u32) -> f32 {
  if (F16) { return unpack2x16float(w)[j]; }
  if (INT8) { return f32(bitcast<i32>(w << (24u - 8u * j)) >> 24u); }
  return f32((w >> (4u * j)) & 15u) - 8.0;
}

// W[row, k]; k may lie in the row's padding (zero), not past it.
fn dequant(row: u32, k: u32) -> f32 {
  let word = k / PER_WORD;
  return quantCode(W[p.offQ + row * p.rowWords + word], k % PER_WORD) * quantScale(row, word);
}
