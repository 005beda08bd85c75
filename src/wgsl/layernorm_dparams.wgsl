// LayerNorm backward, the parameter gradients: dweight = Σ_rows dout·x̂, dbias = Σ_rows dout,
// without atomics. A workgroup covers CX columns of one block of rowsPerBlock rows: its RY
// invocations per column each sum every RY-th row of the block in order, then a fixed tree
// adds the RY partial sums. DIRECT (a single block): the sums are added into dweight and
// dbias straight away. Otherwise block k writes its sums to partial[k·2·cols ..] (dweight's
// cols, then dbias's) and layernorm_dparams_sum.wgsl adds the blocks in order. Bit-for-bit
// repeatable either way.
//#include lib/reduce.wgsl

const CX: u32 = 32u;
const RY: u32 = 8u;
const DIRECT: bool = false;
const RED_WIDTH: u32 = RY;
const RED_GROUPS: u32 = CX;

alias Red = vec2<f32>;
fn combine(a: Red, b: Red, op: u32) -> Red { return a + b; }

struct Params {
  rows: u32, cols: u32, rowsPerBlock: u32,
  offDout: u32, offX: u32, offMean: u32, offRstd: u32,
  offDW: u32, offDB: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> meanIn: array<f32>;
@group(0) @binding(3) var<storage, read> rstdIn: array<f32>;
// DIRECT: the gradient buffer (dweight at offDW, dbias at offDB); otherwise the partial sums.
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(CX, RY)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wg.x * CX + lid.x;
  let r0 = wg.y * p.rowsPerBlock;
  let r1 = min(r0 + p.rowsPerBlock, p.rows);
  var acc = vec2<f32>(0.0); // (Σ dout·x̂, Σ dout)
  if (c < p.cols) {
    for (var r = r0 + lid.y; r < r1; r += RY) {
      let d = dout[p.offDout + r * p.cols + c];
      let xhat = (x[p.offX + r * p.cols + c] - meanIn[p.offMean + r]) * rstdIn[p.offRstd + r];
      acc += vec2<f32>(d * xhat, d);
    }
  }
  // One tree per column: lane lid.y at red[lid.x + lid.y·CX].
  let sum = treeReduce(acc, 0u, lid.y, lid.x, CX);
  if (lid.y == 0u && c < p.cols) {
//#if DIRECT
    out[p.offDW + c] += sum.x;
    out[p.offDB + c] += sum.y;
//#else
    out[wg.y * 2u * p.cols + c] = sum.x;
    out[wg.y * 2u * p.cols + p.cols + c] = sum.y;
//#endif
  }
}
