// Learning-rate schedule: linear warmup from 0, then cosine decay to min_lr at the last step.
export interface ScheduleConfig {
  lr: number;
  min_lr: number;
  warmup_steps: number;
  steps: number;
}

/** The learning rate of optimizer step `step` (1-based). */
export function lrAt(step: number, s: ScheduleConfig): number {
  if (s.warmup_steps > 0 && step <= s.warmup_steps) return (s.lr * step) / s.warmup_steps;
  const span = s.steps - s.warmup_steps;
  if (span <= 0) return s.lr;
  const progress = Math.min(1, Math.max(0, (step - s.warmup_steps) / span));
  return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + Math.cos(Math.PI * progress));
}
