// SIGINT and SIGTERM for long jobs: while armed, the first signal is only recorded, so that the
// job can finish its current step, save and exit; a second one, or one while not armed (during
// set-up, when there is nothing to save), exits at once with the shell's code for the signal.
// process.exit runs the 'exit' handlers (the run lock's release among them).

export type StopSignal = 'SIGINT' | 'SIGTERM';

/** 128 + the signal's number, as shells report a process the signal ended. */
export const SIGNAL_EXIT_CODE: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

export class StopSignals {
  /** The first signal received while armed. */
  signal?: StopSignal;
  /** Whether a signal asks to stop (true) or exits at once (false). */
  armed = false;
  private readonly handlers: [StopSignal, () => void][];

  constructor(private readonly onFirst?: (signal: StopSignal) => void) {
    this.handlers = (['SIGINT', 'SIGTERM'] as const).map((s) => [s, () => this.receive(s)]);
    for (const [s, h] of this.handlers) process.on(s, h);
  }

  private receive(s: StopSignal): void {
    if (!this.armed || this.signal) process.exit(SIGNAL_EXIT_CODE[s]);
    this.signal = s;
    this.onFirst?.(s);
  }

  dispose(): void {
    for (const [s, h] of this.handlers) process.off(s, h);
  }
}
