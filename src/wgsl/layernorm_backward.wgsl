// LayerNorm backward in one dispatch: the input gradient and the parameter gradients. With
// x̂ = (x − mean)·rstd and g = dout·weight:
//   dx += rstd·(g − mean_c(g) − x̂·mean_c(g·x̂))         (accumulated: the residual stream's gradient)
//   dweight = Σ_rows dout·x̂,  dbias = Σ_rows dout      (without atomics)
// The two share no result, so each workgroup does one of each without waiting for the other:
//   rows     workgroup w < rowGroups takes rows w·ROWS .. in lib/layernorm.wgsl's row layout;
//   columns  workgroup w < blocks·chunks takes TPR·ROWS column units (chunk w % chunks) of the
//            row block w / chunks (rowsPerBlock rows), one an invocation, summing the block's rows
//            in order. DIRECT (one block): the sums are added into dweight and dbias (`out`, the
//            gradient buffer); otherwise block k writes them to out[k·2·cols ..] (dweight's cols,
//            then dbias's) and layernorm_dparams_sum.wgsl adds the blocks in order.
// Every sum has a fixed order: results repeat bit for bit. mean and rstd may share a buffer.
//#include lib/layernorm.wgsl

const ROWS: u32 = 1u;
const TPR: u32 = 256u;
const VEC4: bool = false;
const DIRECT: bool = true;

struct Params {
  rows: u32, cols: u32, rowGroups: u32, chunks: u32, blocks: u32, rowsPerBlock: u32,
  offDout: u32, offX: u32, offW: u32, offDx: u32, offMean: u32, offRstd: u32,
  offDW: u32, offDB: u32,
}

//#if VEC4
@group(0) @binding(0) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<vec4<f32>>;
//#else
@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
//#endif
@group(0) @binding(3) var<storage, read> meanIn: array<f32>;
@group(0) @binding(4) var<storage, read> rstdIn: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

fn doutAt(r: u32, u: u32) -> vec4<f32> {
//#if VEC4
  return dout[p.offDout / 4u + r * units() + u];
//#else
  return vec4<f32>(dout[p.offDout + r * p.cols + u], 0.0, 0.0, 0.0);
//#endif
}

fn inputGradient(w: u32, t: u32, y: u32) {
  let row = w * ROWS + y;
  let r = min(row, p.rows - 1u); // rows past the end compute too: the barrier must stay in uniform control flow
  let mean = meanIn[p.offMean + r];
  let rstd = rstdIn[p.offRstd + r];
  var acc = vec4<f32>(0.0); // (Σ g, Σ g·x̂)
  for (var u = t; u < units(); u += TPR) {
    let xhat = (xAt(p.offX, r, u) - mean) * rstd;
    let g = doutAt(r, u) * weightAt(p.offW, u);
    acc += vec4<f32>(sum4(g), sum4(g * xhat), 0.0, 0.0);
  }
  let m = treeReduce(acc, 0u, t, y * TPR, 1u) / f32(p.cols); // (mean_c(g), mean_c(g·x̂))
  if (row < p.rows) {
    for (var u = t; u < units(); u += TPR) {
      let xhat = (xAt(p.offX, r, u) - mean) * rstd;
      let g = doutAt(r, u) * weightAt(p.offW, u);
      let d = rstd * (g - m.x - xhat * m.y);
//#if VEC4
      dx[p.offDx / 4u + r * units() + u] += d;
//#else
      dx[p.offDx + r * p.cols + u] += d.x;
//#endif
    }
  }
}

// One column unit an invocation, its sums over the block's rows in order (no tree, no barrier).
fn parameterGradients(w: u32, t: u32) {
  let block = w / p.chunks;
  let u = (w % p.chunks) * TPR * ROWS + t;
  let r0 = block * p.rowsPerBlock;
  let r1 = min(r0 + p.rowsPerBlock, p.rows);
  if (u >= units()) { return; }
  var dw = vec4<f32>(0.0);
  var db = vec4<f32>(0.0);
  for (var r = r0; r < r1; r++) {
    let d = doutAt(r, u);
    dw = fma(d, (xAt(p.offX, r, u) - meanIn[p.offMean + r]) * rstdIn[p.offRstd + r], dw);
    db += d;
  }
  for (var k = 0u; k < UNIT; k++) {
    let c = u * UNIT + k;
//#if DIRECT
    out[p.offDW + c] += dw[k];
    out[p.offDB + c] += db[k];
//#else
    out[block * 2u * p.cols + c] = dw[k];
    out[block * 2u * p.cols + p.cols + c] = db[k];
//#endif
  }
}

@compute @workgroup_size(TPR, ROWS)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let w = groupIndex(wg, nwg);
  // Both conditions are the same for the whole workgroup, so the barriers inside stay uniform.
  if (w < p.rowGroups) { inputGradient(w, lid.x, lid.y); }
  if (w < p.blocks * p.chunks) { parameterGradients(w, lid.y * TPR + lid.x); }
}
