// Euclidean norm of each row: out[i] = ‖x[i, :]‖ over the n×d rows, for the symmetry score Sym1's E‖x‖ (the
// weighted mean of the norms is then the deterministic matmul wᵀ·out). One invocation per row, summing its squares
// in column order, so the result is the same on every run.

//#include lib/elementwise.wgsl

struct Params { n: u32, d: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn elements() -> u32 { return p.n; }

fn element(i: u32) {
  var s = 0.0;
  for (var c = 0u; c < p.d; c++) {
    let v = x[i * p.d + c];
    s += v * v;
  }
  out[i] = sqrt(s);
}
