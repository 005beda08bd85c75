// f32 → packed f16 (TensorRef dtype 'f16': two halves a u32 word, element 2i in the low half), optionally
// multiplied by a scalar read on the GPU first (the loss scale): dst[i] = f16(src[i] · scale), rounded as the
// host's f16Bits (lib/f16_bits.wgsl). One invocation per destination word, so every word has one writer. dst's
// offset (in halves) and n may be odd: a word shared with a neighbouring tensor (the first, the last) keeps that
// neighbour's half, read and written back by the word's one invocation.

//#include lib/elementwise.wgsl
//#include lib/f16_bits.wgsl

const SCALE: bool = false;

// words: the destination words the tensor touches, from word offDst / 2 on.
struct Params { n: u32, offSrc: u32, offDst: u32, offScale: u32, words: u32 }

@group(0) @binding(0) var<storage, read_write> dst: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
//#if SCALE
@group(0) @binding(3) var<storage, read> scale: array<f32>;
//#endif

fn value(i: u32) -> f32 {
//#if SCALE
  return src[p.offSrc + i] * scale[p.offScale];
//#else
  return src[p.offSrc + i];
//#endif
}

fn elements() -> u32 { return p.words; }

fn element(w: u32) {
  let word = p.offDst / 2u + w;
  var bits = 0u;
  var keep = 0u; // the bits that belong to a neighbour
  for (var j = 0u; j < 2u; j++) {
    let h = 2u * word + j; // the half's index in the buffer
    if (h >= p.offDst && h - p.offDst < p.n) {
      bits |= f16Bits(value(h - p.offDst)) << (16u * j);
    } else {
      keep |= 0xffffu << (16u * j);
    }
  }
  if (keep != 0u) { bits |= dst[word] & keep; }
  dst[word] = bits;
}
