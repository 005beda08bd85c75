// The entry point of a kernel with one invocation per element: WG invocations a workgroup, as many
// workgroups as elements() needs (the host reads WG from the compiled kernel for its grid). The
// including shader defines fn elements() -> u32, how many there are, and fn element(i: u32), the
// work for element i.
//#include lib/grid.wgsl

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let i = groupIndex(wg, nwg) * WG + t;
  if (i < elements()) { element(i); }
}
