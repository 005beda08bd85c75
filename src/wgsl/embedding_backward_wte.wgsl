// Token-embedding gradient without atomics: dwte[v, :] += Σ dout[p, :] over the positions p
// holding token v, in increasing p. The host groups positions by token each step (order,
// starts, uniq, count: see embeddingBackwardIndex); workgroup u owns distinct token uniq[u]
// and so the only writer of its row, and sums positions order[starts[u] .. starts[u+1]) in
// order: bit-for-bit repeatable. The dispatch covers the capacity (B·T distinct tokens at
// most); workgroups at or past count return at once.
// VEC4 (d and both offsets multiples of 4): an invocation adds 4 columns at a time, read and written as vec4s.
// WG: the host's (embedding.ts).

//#include lib/rows.wgsl

const WG: u32 = 64u;

//#if VEC4
alias V = vec4<f32>;
const UNIT: u32 = 4u;
//#else
alias V = f32;
const UNIT: u32 = 1u;
//#endif

struct Params {
  d: u32, offDout: u32, offDwte: u32, offCount: u32,
  offOrder: u32, offStarts: u32, offUniq: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<V>;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read> starts: array<u32>;
@group(0) @binding(3) var<storage, read> uniq: array<u32>;
@group(0) @binding(4) var<storage, read> count: array<u32>;
@group(0) @binding(5) var<storage, read_write> grad: array<V>;
@group(0) @binding(6) var<uniform> p: Params;

fn rows() -> u32 { return count[p.offCount]; }

fn row(u: u32, t: u32) {
  let row = (p.offDwte + uniq[p.offUniq + u] * p.d) / UNIT;
  let k0 = starts[p.offStarts + u];
  let k1 = starts[p.offStarts + u + 1u];
  for (var c = t; c < p.d / UNIT; c += WG) {
    var acc = V(0.0);
    for (var k = k0; k < k1; k++) { acc += dout[(p.offDout + order[p.offOrder + k] * p.d) / UNIT + c]; }
    grad[row + c] += acc;
  }
}
