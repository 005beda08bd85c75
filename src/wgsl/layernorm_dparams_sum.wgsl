// LayerNorm backward, second stage of the parameter gradients (see layernorm_dparams.wgsl):
// one invocation per gradient element (dweight's cols, then dbias's) adds the blocks'
// partial sums in block order into the gradient buffer. Fixed order: bit-for-bit repeatable.

//#include lib/elementwise.wgsl

struct Params { cols: u32, blocks: u32, offDW: u32, offDB: u32 }

@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn elements() -> u32 { return 2u * p.cols; }

fn element(i: u32) {
  var s = 0.0;
  for (var k = 0u; k < p.blocks; k++) { s += partial[k * 2u * p.cols + i]; }
  let o = select(p.offDB + i - p.cols, p.offDW + i, i < p.cols);
  grad[o] += s;
}
