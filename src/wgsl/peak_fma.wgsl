// Peak arithmetic throughput, for `hlm bench`'s fraction of peak. Each invocation runs eight
// independent vec4 chains x ← fma(x, m, c) (independent chains hide the FMA latency) for
// p.iters iterations, then writes the sum of its 32 lanes so that no work is dead code.
// FLOPs = invocations · iters · 8 chains · 4 lanes · 2. m and c come from a uniform and the
// trip count too, so the compiler can neither fold nor fully unroll the loop.

//#include lib/elementwise.wgsl

struct Params { n: u32, iters: u32, m: f32, c: f32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;

fn elements() -> u32 { return p.n; }

fn element(i: u32) {
  // Start values depend on the invocation (i mod 1024) and the lane, as the host's reference does.
  let s = vec4<f32>(f32(i % 1024u) / 1024.0);
  let lane = vec4<f32>(0.0, 0.01, 0.02, 0.03);
  var a0 = s + lane; var a1 = s + lane + 0.04; var a2 = s + lane + 0.08; var a3 = s + lane + 0.12;
  var a4 = s + lane + 0.16; var a5 = s + lane + 0.20; var a6 = s + lane + 0.24; var a7 = s + lane + 0.28;
  let m = vec4<f32>(p.m);
  let c = vec4<f32>(p.c);
  for (var k = 0u; k < p.iters; k++) {
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  let t = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
  out[i] = (t.x + t.y) + (t.z + t.w);
}
