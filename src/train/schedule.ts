// Learning-rate schedules: linear warm-up from 0, then constant, linear decay to 0, or cosine
// decay to a tenth of the peak (nanoGPT's min_lr = lr/10). A pure function of the step, so a
// resumed run follows the same curve. A run with a time budget (--max-time) cannot know its
// step count in advance: its decay follows the fraction of the budget spent instead (warm-up
// stays in steps), so the rate reaches its floor when the time runs out whatever the speed.
export type Schedule = 'cosine' | 'linear' | 'constant';
export const SCHEDULES: readonly Schedule[] = ['cosine', 'linear', 'constant'];

export interface ScheduleSpec {
  lr: number;
  warmup: number;
  steps: number;
  schedule: Schedule;
}

/**
 * The learning rate of step `step` (counted from 1). `spent`, when given, is the fraction of a
 * time budget already used: it replaces the step-based progress of the decay.
 */
export function lrAt(step: number, s: ScheduleSpec, spent?: number): number {
  if (s.warmup > 0 && step <= s.warmup) return (s.lr * step) / s.warmup;
  if (s.schedule === 'constant') return s.lr;
  const span = Math.max(1, s.steps - s.warmup);
  const progress = Math.min(1, Math.max(0, spent ?? (step - s.warmup) / span));
  if (s.schedule === 'linear') return s.lr * (1 - progress);
  const min = s.lr / 10;
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * progress));
}
