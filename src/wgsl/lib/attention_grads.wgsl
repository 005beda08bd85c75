// What the fused attention's backward passes share (attention_dq, attention_dkv): the gradient of
// the output dout [B, T, d] (binding 2), the log-sum-exps (3) and dqkv [B, T, 3d] (5), with vec4
// reads and writes of a head's row as in lib/attention.wgsl (which the including shader includes).

//#if VEC4
@group(0) @binding(2) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<vec4<f32>>;
//#else
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>;
//#endif
@group(0) @binding(3) var<storage, read> lse: array<f32>;

// Channels 4c .. 4c + 3 of dout's head row at element offset a (0 past HD).
fn dout4(a: u32, c: u32) -> vec4<f32> {
//#if VEC4
  return dout[a / 4u + c];
//#else
  var x = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    if (4u * c + k < HD) { x[k] = dout[a + 4u * c + k]; }
  }
  return x;
//#endif
}

// Store channels 4c .. 4c + 3 (those below HD) of a head row of dqkv at element offset a.
fn storeDqkv(a: u32, c: u32, x: vec4<f32>) {
//#if VEC4
  dqkv[a / 4u + c] = x;
//#else
  for (var k = 0u; k < 4u; k++) {
    if (4u * c + k < HD) { dqkv[a + 4u * c + k] = x[k]; }
  }
//#endif
}
