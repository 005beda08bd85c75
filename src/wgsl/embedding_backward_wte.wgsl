// Token-embedding gradient without atomics: dwte[v, :] += Σ dout[p, :] over the positions p
// holding token v, in increasing p. The host groups positions by token each step (order,
// starts, uniq, count: see embeddingBackwardIndex); workgroup u owns distinct token uniq[u]
// and so the only writer of its row, and sums positions order[starts[u] .. starts[u+1]) in
// order: bit-for-bit repeatable. The dispatch covers the capacity (B·T distinct tokens at
// most); workgroups at or past count return at once.

//#include lib/rows.wgsl

const WG: u32 = 64u;

struct Params {
  d: u32, offDout: u32, offDwte: u32, offCount: u32,
  offOrder: u32, offStarts: u32, offUniq: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read> starts: array<u32>;
@group(0) @binding(3) var<storage, read> uniq: array<u32>;
@group(0) @binding(4) var<storage, read> count: array<u32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

fn rows() -> u32 { return count[p.offCount]; }

fn row(u: u32, t: u32) {
  let row = p.offDwte + uniq[p.offUniq + u] * p.d;
  let k0 = starts[p.offStarts + u];
  let k1 = starts[p.offStarts + u + 1u];
  for (var c = t; c < p.d; c += WG) {
    var acc = 0.0;
    for (var k = k0; k < k1; k++) { acc += dout[p.offDout + order[p.offOrder + k] * p.d + c]; }
    grad[row + c] += acc;
  }
}
