// One process at a time in a directory: <dir>/<name> holds the owner's pid, created exclusively.
// A lock whose process is gone (killed, crashed) is stale and taken over; one whose process runs
// is refused with a message naming it.
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HlmError } from '../errors.js';

export interface DirLock {
  file: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes <dir>/<name> for this process (creating dir), or throws an HlmError naming `what` and the owner. */
export function lockDir(dir: string, what: string, name = '.lock'): DirLock {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let held = true;
      return {
        file,
        release() {
          if (held) rmSync(file, { force: true });
          held = false;
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new HlmError(`cannot lock ${what} ${dir}: ${(err as Error).message}`);
    }
    let pid = NaN;
    try {
      pid = Number(readFileSync(file, 'utf8').trim());
    } catch {
      // Removed meanwhile: try again.
    }
    if (Number.isInteger(pid) && pid > 0 && alive(pid))
      throw new HlmError(`${what} ${dir} is in use by process ${pid} (${file}); wait for it or stop it`);
    rmSync(file, { force: true });
  }
  throw new HlmError(`cannot lock ${what} ${dir}: ${file} keeps reappearing`);
}
