// Progress of long commands on stderr: on a terminal one line rewritten in place; anywhere else
// (nohup, CI, schedulers) a log line per report, so that a run is never silent for long.
import { log } from '../log.js';

/** 75 → "1m15s", 12.4 → "12s". */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  return seconds >= 60 ? `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s` : `${Math.round(seconds)}s`;
}

/** Whether progress goes to an interactive terminal (not with --json: its consumers read stderr too). */
export function interactive(json: boolean): boolean {
  return Boolean(process.stderr.isTTY) && !json;
}

/** A reporter: `line` is what a person reads, `fields` what a log line carries besides; `final` ends the line. */
export type ProgressOut = (line: string, fields: Record<string, number | string>, final?: boolean) => void;

export function progressOut(tty: boolean): ProgressOut {
  if (tty) return (line, _fields, final) => process.stderr.write(`\r${line}   ${final ? '\n' : ''}`);
  return (line, fields) => log.info(fields, line);
}
