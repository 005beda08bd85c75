// A test-only hook for fault injection: HLM_TEST_PAUSE=<point>[:<n>] makes the process stop at
// the n-th time (default the first) it reaches `point`, print "hlm-test: paused at <point>" on
// stderr and wait there for ever, so that a test can kill it at that exact moment (between the
// two renames of a checkpoint save, say). The wait keeps the event loop turning, so signal
// handlers still run. Without the variable it costs one lookup.

const reached = new Map<string, number>();

export async function testPause(point: string): Promise<void> {
  const spec = process.env.HLM_TEST_PAUSE;
  if (!spec) return;
  const [name, nth = '1'] = spec.split(':');
  if (name !== point) return;
  const count = (reached.get(point) ?? 0) + 1;
  reached.set(point, count);
  if (count !== Number(nth)) return;
  process.stderr.write(`hlm-test: paused at ${point}\n`);
  await new Promise<never>(() => setInterval(() => undefined, 1 << 30));
}
