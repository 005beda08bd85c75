// Runs the built CLI (bin/run.js) as a user would, in a child process with its own environment.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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

export interface RunningHlm {
  child: ChildProcess;
  /** stderr so far. */
  stderr(): string;
  /** Resolves when the text appears on stderr (or rejects when the process ends first). */
  waitFor(text: string | RegExp): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** The CLI in a child process that the test can watch and signal while it runs. */
export function spawnHlm(args: string[], env: Record<string, string> = {}): RunningHlm {
  const child = spawn(process.execPath, [join(repoRoot(), 'bin/run.js'), ...args], {
    cwd: repoRoot(),
    env: { ...process.env, HLM_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: { test: (s: string) => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (c: string) => (out += c));
  child.stderr!.on('data', (c: string) => {
    err += c;
    for (const w of [...waiters])
      if (w.test(err)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) =>
      child.on('close', (code, signal) => {
        for (const w of waiters) w.reject(new Error(`hlm ended (${code ?? signal}) before that appeared:\n${err}`));
        resolve({ code, signal, stdout: out, stderr: err });
      }),
  );
  return {
    child,
    stderr: () => err,
    waitFor: (text) =>
      new Promise<void>((resolve, reject) => {
        const test = (s: string) => (typeof text === 'string' ? s.includes(text) : text.test(s));
        if (test(err)) resolve();
        else waiters.push({ test, resolve, reject });
      }),
    done,
  };
}
