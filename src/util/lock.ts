// One process at a time per directory: a lock file holding the holder's pid, host, start time
// and (on Linux) the process's start tick, so that a reused pid is not mistaken for the holder.
// It is created complete and atomically (written beside, then hard-linked into place, which fails
// when a lock exists). A lock whose holder is gone (a killed run) is taken over; one held on
// another host cannot be checked and is refused with the command that removes it.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { HlmError } from '../errors.js';

export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder took the lock. */
  started: string;
  /** The holder's start time in clock ticks since boot (/proc/<pid>/stat), where known. */
  start_ticks?: number;
}

export interface Lock {
  readonly path: string;
  /** The holder of a stale lock this one replaced (its process had ended). */
  readonly tookOver?: LockHolder;
  release(): void;
}

/** A process's start time in clock ticks since boot, or undefined off Linux. */
function startTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isSafeInteger(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid runs on this host (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Whether the lock's holder is still running (on this host). */
function holderAlive(h: LockHolder): boolean {
  if (!processAlive(h.pid)) return false;
  const now = startTicks(h.pid);
  return h.start_ticks === undefined || now === undefined || now === h.start_ticks;
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
    return Number.isSafeInteger(h.pid) && typeof h.host === 'string' ? h : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw e;
    return undefined;
  }
}

const same = (a: LockHolder | undefined, b: LockHolder) => a?.pid === b.pid && a.started === b.started;

/**
 * Put the lock file in place unless one exists (EEXIST): a hard link of the complete file, or, on filesystems
 * without hard links, an exclusive create written at once.
 */
function place(tmp: string, path: string, me: LockHolder): void {
  try {
    linkSync(tmp, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    writeNew(path, me);
  }
}

/** Create `path` (failing with EEXIST when it exists) holding the holder's JSON, synced. */
function writeNew(path: string, h: LockHolder): void {
  const fd = openSync(path, 'wx');
  try {
    writeSync(fd, JSON.stringify(h) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Takes the lock at `path` (its directory must exist) or throws an HlmError naming the holder. `what` names the
 * locked thing in messages ("run directory runs/x").
 */
export function acquireLock(path: string, what: string): Lock {
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    start_ticks: startTicks(process.pid),
  };
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  writeNew(tmp, me);
  let tookOver: LockHolder | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        place(tmp, path, me);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
      }
      let holder: LockHolder | undefined;
      try {
        holder = readHolder(path);
      } catch {
        continue; // released meanwhile
      }
      if (holder && holder.host !== me.host)
        throw new HlmError(
          `${what} is locked by pid ${holder.pid} on host ${holder.host} (since ${holder.started}); if that run has ` +
            `ended, remove ${path}`,
        );
      if (holder && holderAlive(holder))
        throw new HlmError(
          `${what} is in use by another run: pid ${holder.pid} (since ${holder.started}, lock ${path}); wait for it ` +
            `to end or choose another directory`,
        );
      // A stale (or unreadable) lock: move it aside, check it was the one judged, and drop it.
      const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        renameSync(path, aside);
      } catch {
        continue;
      }
      const moved = readHolder(aside);
      if (holder && !same(moved, holder)) {
        // Another process replaced the stale lock between our read and our rename: put its lock back.
        try {
          place(aside, path, moved ?? holder);
        } finally {
          rmSync(aside, { force: true });
        }
        continue;
      }
      rmSync(aside, { force: true });
      tookOver = holder ?? { pid: 0, host: me.host, started: 'unknown (unreadable lock file)' };
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  const onExit = () => release();
  const release = () => {
    process.off('exit', onExit);
    try {
      if (same(readHolder(path), me)) rmSync(path, { force: true });
    } catch {
      /* already gone */
    }
  };
  process.on('exit', onExit);
  return { path, tookOver, release };
}
