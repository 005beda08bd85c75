// A dispatch of more workgroups than the adapter allows along x (65,535 at least) folds them into y
// (grid() in src/kernels/types.ts); this is a workgroup's place in the unfolded order.
fn groupIndex(wg: vec3<u32>, nwg: vec3<u32>) -> u32 { return wg.y * nwg.x + wg.x; }
