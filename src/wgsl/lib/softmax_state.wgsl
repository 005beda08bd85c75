// An online softmax state over some of a row's logits (the cross-entropy head's partials):
// m the largest logit (with ARGMAX the winner of lib/argmax_order.wgsl's order, so NaN when
// any is NaN), s = Σ exp(x − m), i the argmax's column (with ARGMAX), t the target's logit where
// these columns hold the target (else 0). Two states of disjoint columns merge into the state of
// both. The including shader declares const ARGMAX: bool.
//#include lib/argmax_order.wgsl

struct Softmax { m: f32, s: f32, i: u32, t: f32 }

// No column yet: the lowest finite m (exp(m − m') stays 0 or 1·0, never NaN) and an index that
// loses every tie.
const SOFTMAX_EMPTY = Softmax(-3.4028234e38, 0.0, 0xffffffffu, 0.0);

fn mergeSoftmax(a: Softmax, b: Softmax) -> Softmax {
  var m = max(a.m, b.m);
  var i = a.i;
  if (ARGMAX) {
    let win = better(ArgMax(a.m, a.i), ArgMax(b.m, b.i));
    m = select(a.m, b.m, win);
    i = select(a.i, b.i, win);
  }
  return Softmax(m, a.s * exp(a.m - m) + b.s * exp(b.m - m), i, a.t + b.t);
}

// A state as the vec4 partials are stored: (m, s, i's bits, t).
fn packSoftmax(x: Softmax) -> vec4<f32> { return vec4<f32>(x.m, x.s, bitcast<f32>(x.i), x.t); }
fn unpackSoftmax(v: vec4<f32>) -> Softmax { return Softmax(v.x, v.y, bitcast<u32>(v.z), v.w); }
