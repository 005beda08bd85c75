// The step guard's decision (step_guard.wgsl) on the host: skip the update when the loss or the
// gradient norm is not finite, and, sticky, every update after a skipped one.

export interface GuardState {
  /** Skip this step's update. */
  skip: boolean;
  /** Steps skipped so far. */
  skipped: number;
}

export function guardStep(state: GuardState, loss: number, norm: number, sticky = true): GuardState {
  const skip = !(Number.isFinite(loss) && Number.isFinite(norm)) || (sticky && state.skipped > 0);
  return { skip, skipped: state.skipped + (skip ? 1 : 0) };
}
