// One pino logger for the whole tool. Logs go to stderr (stdout is reserved for results and
// JSON lines): human-readable on a terminal, JSON otherwise so pipelines can parse them.
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

function make(level: LevelWithSilent): Logger {
  if (process.stderr.isTTY) {
    return pino({ level }, pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid,hostname' }));
  }
  return pino({ level, base: undefined }, pino.destination({ dest: 2, sync: true }));
}

export let log: Logger = make((process.env.HLM_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info');

export function setLogLevel(level: LevelWithSilent): void {
  log = make(level);
}
