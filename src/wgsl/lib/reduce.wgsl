// Tree reduction in workgroup memory: RED_WIDTH invocations (a power of two) combine one value each
// in a fixed order, so results repeat bit for bit (no atomics). RED_GROUPS trees may run side by side
// (e.g. one per row when a workgroup handles several rows).
// The including shader declares: alias Red, the values' type; const RED_WIDTH and RED_GROUPS (u32);
// fn combine(a: Red, b: Red, op: u32) -> Red, where op (a constant at each call) picks the operation.
// lib/reduce_f32.wgsl and lib/argmax.wgsl declare Red and combine for the usual cases.

var<workgroup> red: array<Red, RED_WIDTH * RED_GROUPS>;

// Every invocation of the workgroup calls this (it waits at barriers), giving its value x as lane
// `lane` of the tree whose lanes sit at red[first + lane·stride]; each gets its tree's result.
// The result is read after the last barrier, and the barrier that keeps a next call from overwriting
// it before everyone has read it opens that next call: with `read, barrier, return` instead, llvmpipe
// (Mesa 22.3) returned a later value to all but the first SIMD group of invocations.
fn treeReduce(x: Red, op: u32, lane: u32, first: u32, stride: u32) -> Red {
  if (RED_WIDTH == 1u) { return x; }
  workgroupBarrier();
  red[first + lane * stride] = x;
  workgroupBarrier();
  for (var s = RED_WIDTH / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      let at = first + lane * stride;
      red[at] = combine(red[at], red[at + s * stride], op);
    }
    workgroupBarrier();
  }
  return red[first];
}

// The common case: one tree over the whole workgroup (RED_WIDTH its size), lane t.
fn workgroupReduce(x: Red, op: u32, t: u32) -> Red { return treeReduce(x, op, t, 0u, 1u); }
