// Runs the built CLI (bin/run.js) as a user would, in a child process with its own environment.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function hlm(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): CliResult {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(repoRoot(), 'bin/run.js'), ...args], {
    cwd: repoRoot(),
    env: { ...process.env, HLM_LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}
