// Checks that an output can be written, made before any work starts, so that a run does not
// train for an hour and then fail on a read-only directory, a path under a file or a full
// disk's permissions. The only reliable test (root ignores permission bits; read-only mounts
// and pseudo-filesystems refuse anyway) is to create a file, so the check makes and removes
// one in the directory the output would go to, or in the nearest existing directory above it.
// Nothing else is created.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { HlmError } from '../errors.js';

/** A filesystem error's code and description, without the probe file's path ("EACCES: permission denied"). */
function reason(e: unknown): string {
  const message = (e as Error).message ?? String(e);
  return (e as NodeJS.ErrnoException).code ? message.split(', ')[0] : message;
}

/** stat, or undefined where nothing is (a path under a file counts as nothing: its parent is reported). */
function statOrNothing(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

function probe(dir: string, what: string, target: string): void {
  const file = resolve(dir, `.hlm-write-check-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    closeSync(openSync(file, 'wx'));
  } catch (e) {
    throw new HlmError(`cannot write ${what} ${target}: ${reason(e)}`);
  }
  rmSync(file, { force: true });
}

/**
 * Throws unless `dir` is a directory hlm can write in, or one it can create (its nearest existing ancestor is a
 * writable directory). `what` names the output in the message ("run directory", "GLUE results"), `target` the path
 * the message gives (default `dir`).
 */
export function checkOutputDir(dir: string, what: string, target = dir): void {
  let at = resolve(dir);
  for (;;) {
    const st = statOrNothing(at);
    if (st) {
      if (!st.isDirectory())
        throw new HlmError(
          at === resolve(dir)
            ? `cannot write ${what} ${target}: it exists and is not a directory`
            : `cannot write ${what} ${target}: ${at} is not a directory`,
        );
      probe(at, what, target);
      return;
    }
    const up = dirname(at);
    if (up === at) throw new HlmError(`cannot write ${what} ${target}: no existing directory above it`);
    at = up;
  }
}

/**
 * Throws unless a file can be written whole at `path`: a regular file or nothing there, in a directory that exists
 * (or, with `createsParents`, that can be created) and takes new files. A special file (/dev/stdout, a pipe) is
 * accepted as it is: it is written in place.
 */
export function checkOutputFile(path: string, what: string, o: { createsParents?: boolean } = {}): void {
  const st = statOrNothing(path);
  if (st?.isDirectory()) throw new HlmError(`cannot write ${what} ${path}: it is a directory`);
  if (st && !st.isFile()) return;
  const dir = dirname(resolve(path));
  const parent = statOrNothing(dir);
  if (!parent && !o.createsParents) throw new HlmError(`cannot write ${what} ${path}: directory ${dir} does not exist`);
  if (parent && !parent.isDirectory()) throw new HlmError(`cannot write ${what} ${path}: ${dir} is not a directory`);
  checkOutputDir(dir, what, path);
}
