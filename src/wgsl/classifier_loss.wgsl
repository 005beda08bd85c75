// A sequence classifier's loss, one invocation per row of logits [rows, C]:
//   classes (C ≥ 2)   loss = w·(logsumexp(z) − z_y),  dz_c = w·(softmax(z)_c − [c = y])
//   regression (C = 1) loss = w·(z − y)²,             dz   = 2w·(z − y)
// w is the row's weight already divided by the batch's total weight (the host writes it: 0 for
// a padding row, the class weight for class-balanced training), so Σ losses is the batch's
// weighted mean loss and dz its gradient. The target is f32: a class index, or the score.
// GRAD_SCALE: dz is multiplied last by a scalar from a GPU buffer, dynamic loss scaling's scale
// (a power of two scales it exactly); the losses are not.
// Bindings: logits (0), targets (1), weights (2), losses (3), dlogits (4), params (5), gradScale (6).

//#include lib/elementwise.wgsl

struct Params { rows: u32, C: u32, offLogits: u32, offDlogits: u32, offGradScale: u32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
//#if GRAD_SCALE
@group(0) @binding(6) var<storage, read> gradScale: array<f32>;
fn multiplier() -> f32 { return gradScale[p.offGradScale]; }
//#else
fn multiplier() -> f32 { return 1.0; }
//#endif

fn elements() -> u32 { return p.rows; }

fn element(r: u32) {
  let w = weights[r];
  let z0 = p.offLogits + r * p.C;
  let d0 = p.offDlogits + r * p.C;
  if (p.C == 1u) {
    let diff = logits[z0] - targets[r];
    losses[r] = w * diff * diff;
    dlogits[d0] = 2.0 * w * diff * multiplier();
    return;
  }
  let y = u32(targets[r]);
  var m = logits[z0];
  for (var c = 1u; c < p.C; c++) { m = max(m, logits[z0 + c]); }
  var s = 0.0;
  for (var c = 0u; c < p.C; c++) { s += exp(logits[z0 + c] - m); }
  let lse = m + log(s);
  let g = multiplier();
  losses[r] = w * (lse - logits[z0 + y]);
  for (var c = 0u; c < p.C; c++) {
    let onehot = select(0.0, 1.0, c == y);
    dlogits[d0 + c] = w * (exp(logits[z0 + c] - lse) - onehot) * g;
  }
}
