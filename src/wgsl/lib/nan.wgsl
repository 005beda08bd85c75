// WGSL lets compilers assume floats are never NaN, so `x != x` may fold to false (SwiftShader's
// does); test the bits instead.
fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
