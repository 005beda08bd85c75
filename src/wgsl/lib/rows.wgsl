// The entry point of a kernel with one workgroup a row: WG invocations (the including shader declares
// WG), one workgroup per row of rows(), folded into y past the adapter's limit along x. The including
// shader defines fn rows() -> u32, how many there are, and fn row(r: u32, t: u32), invocation t's work
// on row r. A workgroup past the last row returns at once; that is uniform per workgroup, so row() may
// wait at barriers.
//#include lib/grid.wgsl

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let r = groupIndex(wg, nwg);
  if (r < rows()) { row(r, t); }
}
