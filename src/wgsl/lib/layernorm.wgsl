// What the LayerNorm shaders share (layernorm_forward, layernorm_backward): ROWS rows a workgroup,
// TPR invocations a row striding over its columns (the partial results combined by a fixed tree
// in workgroup memory, skipped when TPR = 1: no barrier at all), and rows read a
// unit at a time: 4 floats with VEC4 (cols and every offset a multiple of 4), else 1 float in lane
// x of a vec4 whose other lanes are 0 (LANES masks them out where 0 would not do).
// The including shader declares ROWS, TPR, VEC4, a Params with rows and cols bound as `p`, and the
// bindings x and weight (array<vec4<f32>> with VEC4, else array<f32>).
//#include lib/grid.wgsl

const RED_WIDTH: u32 = TPR;
const RED_GROUPS: u32 = ROWS;

alias Red = vec4<f32>;
fn combine(a: Red, b: Red, op: u32) -> Red { return a + b; }
//#include lib/reduce.wgsl

//#if VEC4
const UNIT: u32 = 4u;
const LANES = vec4<f32>(1.0);
//#else
const UNIT: u32 = 1u;
const LANES = vec4<f32>(1.0, 0.0, 0.0, 0.0);
//#endif

// Units a row holds.
fn units() -> u32 { return p.cols / UNIT; }

// Unit u of row r of a [rows, cols] tensor starting at element off (off a multiple of 4 with VEC4).
fn xAt(off: u32, r: u32, u: u32) -> vec4<f32> {
//#if VEC4
  return x[off / 4u + r * units() + u];
//#else
  return vec4<f32>(x[off + r * p.cols + u], 0.0, 0.0, 0.0);
//#endif
}
fn weightAt(off: u32, u: u32) -> vec4<f32> {
//#if VEC4
  return weight[off / 4u + u];
//#else
  return vec4<f32>(weight[off + u], 0.0, 0.0, 0.0);
//#endif
}

fn sum4(v: vec4<f32>) -> f32 { return (v.x + v.y) + (v.z + v.w); }
