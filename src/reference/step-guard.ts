// The step guard's decision (step_guard.wgsl) on the host: skip the update when the loss or the
// gradient norm is not finite, and, sticky, every update after a skipped one. With loss scaling
// a finite loss and a non-finite norm at a scale above 1 is an overflow: skipped without
// sticking, a dynamic scale halves (not below 1); `growth` applied steps in a row double it.

export interface GuardState {
  /** Skip this step's update. */
  skip: boolean;
  /** Steps skipped as non-finite so far. */
  skipped: number;
  /** With loss scaling: the scale, applied steps since it changed, overflow skips. */
  scale?: number;
  goodSteps?: number;
  overflows?: number;
}

export function guardStep(
  state: GuardState,
  loss: number,
  norm: number,
  sticky = true,
  scaling?: { growth: number },
): GuardState {
  const scale = state.scale ?? 1;
  const overflow = Boolean(scaling) && Number.isFinite(loss) && !Number.isFinite(norm) && scale > 1;
  const diverged = (!(Number.isFinite(loss) && Number.isFinite(norm)) && !overflow) || (sticky && state.skipped > 0);
  const next: GuardState = { skip: diverged || overflow, skipped: state.skipped + (diverged ? 1 : 0) };
  if (!scaling) return next;
  let goodSteps = state.goodSteps ?? 0;
  let overflows = state.overflows ?? 0;
  let s = scale;
  if (diverged) {
    /* the scale state stays */
  } else if (overflow) {
    overflows++;
    if (scaling.growth > 0) {
      s = Math.max(s * 0.5, 1);
      goodSteps = 0;
    }
  } else if (++goodSteps >= scaling.growth && scaling.growth > 0) {
    s = Math.min(s * 2, 2 ** 24);
    goodSteps = 0;
  }
  return { ...next, scale: s, goodSteps, overflows };
}
