// Every file hlm writes whole goes through writeFileAtomic, so a reader (or the next run after a
// crash) sees the previous file or the new one, never a part. The bytes go to a temporary file
// in the target's directory (a rename is atomic only within one filesystem), which is fsynced,
// renamed onto the target, and the directory fsynced so that the new name survives a crash. On
// failure the temporary file is removed and the target keeps its previous contents.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  openSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HlmError } from '../errors.js';

/** A whole file: text (UTF-8), bytes, or bytes in pieces (written in order, never joined into one copy). */
export type FileContents = string | Uint8Array | Iterable<Uint8Array>;

/** One write call is capped near 2 GiB: larger pieces go in parts. */
const MAX_WRITE = 1 << 30;

/**
 * Writes `contents` to `path` atomically. `what` says what the file is ("GLUE result", "token
 * shard", ...): a filesystem error becomes one HlmError naming it and the path. The directory
 * must exist. A symbolic link is written through (its target is replaced, the link kept), and
 * an existing file keeps its permissions. A target that is not a regular file (/dev/stdout, a
 * pipe) has nothing to replace: it is written in place.
 */
export function writeFileAtomic(path: string, contents: FileContents, what: string): void {
  let fd: number | undefined;
  let tmp: string | undefined;
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    if (st && !st.isFile() && !st.isDirectory()) {
      fd = openSync(path, 'w');
      writePieces(fd, contents);
      return;
    }
    const target = st ? realpathSync(path) : path;
    tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    fd = openSync(tmp, 'wx');
    if (st) fchmodSync(fd, st.mode & 0o7777);
    writePieces(fd, contents);
    fsyncSync(fd);
    const written = fd;
    fd = undefined;
    closeSync(written);
    renameSync(tmp, target);
    tmp = undefined;
    syncDir(dirname(target));
  } catch (err) {
    if (tmp !== undefined) rmSync(tmp, { force: true });
    throw fsError(err, `cannot write ${what} ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writePieces(fd: number, contents: FileContents): void {
  const pieces = typeof contents === 'string' ? [Buffer.from(contents, 'utf8')] : asPieces(contents);
  for (const piece of pieces) {
    for (let at = 0; at < piece.length;) at += writeSync(fd, piece, at, Math.min(piece.length - at, MAX_WRITE));
  }
}

function asPieces(contents: Uint8Array | Iterable<Uint8Array>): Iterable<Uint8Array> {
  return contents instanceof Uint8Array ? [contents] : contents;
}

/** fsync a directory, so that the names created or renamed in it are durable. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A filesystem error (it has a syscall) as an HlmError prefixed with `doing`; any other error unchanged. */
export function fsError(err: unknown, doing: string): unknown {
  // Not `instanceof Error`: errors from node:fs come from another realm under jest's vm modules.
  const e = err as Partial<NodeJS.ErrnoException> | null;
  if (!(err instanceof HlmError) && typeof e?.syscall === 'string') return new HlmError(`${doing}: ${e.message}`);
  return err;
}
