// XDG_RUNTIME_DIR for the native libraries under Dawn: Mesa's Vulkan drivers (through their
// window-system code) complain on stderr ("error: XDG_RUNTIME_DIR is invalid or not set") when it
// is missing, as it is under nohup, cron, CI and in containers. When none is set, hlm sets a
// private one before the first adapter is requested: <tmp>/hlm-runtime-<uid>, mode 0700 and owned
// by this user as the XDG spec asks, or a fresh temporary directory when that one is not.
import { lstatSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Sets XDG_RUNTIME_DIR when it is unset or empty; returns the directory it set, else undefined. */
export function ensureRuntimeDir(): string | undefined {
  if (process.env.XDG_RUNTIME_DIR) return undefined;
  const uid = process.getuid?.();
  let dir = join(tmpdir(), `hlm-runtime-${uid ?? 'user'}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch {
    /* there already, checked below */
  }
  const st = lstatSync(dir, { throwIfNoEntry: false });
  const private_ = st?.isDirectory() && (st.mode & 0o077) === 0 && (uid === undefined || st.uid === uid);
  if (!private_) dir = mkdtempSync(join(tmpdir(), 'hlm-runtime-'));
  process.env.XDG_RUNTIME_DIR = dir;
  return dir;
}
