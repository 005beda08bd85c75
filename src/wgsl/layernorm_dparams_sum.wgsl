// LayerNorm backward, second stage of the parameter gradients (see layernorm_dparams.wgsl):
// one invocation per gradient element (dweight's cols, then dbias's) adds the blocks'
// partial sums in block order into the gradient buffer. Fixed order: bit-for-bit repeatable.

const WG: u32 = 256u;

struct Params { cols: u32, blocks: u32, offDW: u32, offDB: u32 }

@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= 2u * p.cols) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.blocks; k++) { s += partial[k * 2u * p.cols + i]; }
  let o = select(p.offDB + i - p.cols, p.offDW + i, i < p.cols);
  grad[o] += s;
}
