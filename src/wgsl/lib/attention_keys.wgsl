// Keys and values of a block of BC keys for attention_forward and attention_dq: read straight from
// the packed qkv rows, or (STAGE) from workgroup memory after stageKeys copied the block there,
// each invocation loading its share. keyAt gives where key j0 + jj starts; key4 and value4 read its
// channels 4c .. 4c + 3 and those of its value.
// The including shader includes lib/attention.wgsl first.

//#if STAGE
var<workgroup> tileK: array<vec4<f32>, BC * HD4>;
var<workgroup> tileV: array<vec4<f32>, BC * HD4>;

// Every invocation of the workgroup calls this with the same j0 (it waits at barriers).
fn stageKeys(b: u32, h: u32, j0: u32, t: u32) {
  workgroupBarrier(); // the previous block has been read
  for (var e = t; e < BC * HD4; e += WG) {
    let a = p.offQkv + packedAt(1u, 3u, b, min(j0 + e / HD4, p.T - 1u), h);
    tileK[e] = qkv4(a, e % HD4);
    tileV[e] = qkv4(a + p.d, e % HD4);
  }
  workgroupBarrier();
}
fn keyAt(b: u32, h: u32, j0: u32, jj: u32) -> u32 { return jj * HD4; }
fn key4(a: u32, c: u32) -> vec4<f32> { return tileK[a + c]; }
fn value4(a: u32, c: u32) -> vec4<f32> { return tileV[a + c]; }
//#else
fn stageKeys(b: u32, h: u32, j0: u32, t: u32) {}
fn keyAt(b: u32, h: u32, j0: u32, jj: u32) -> u32 { return p.offQkv + packedAt(1u, 3u, b, j0 + jj, h); }
fn key4(a: u32, c: u32) -> vec4<f32> { return qkv4(a, c); }
fn value4(a: u32, c: u32) -> vec4<f32> { return qkv4(a + p.d, c); } // a head's value sits d after its key
//#endif
