// An experiment's budget as users write it: a wall-clock duration ("90s", "20m", "1h30m", units
// s, m, h, lower case) or a token count ("5M", "500k", "2G", "120000"; k, M, G are 10³, 10⁶,
// 10⁹, and a plain number counts tokens). Lower-case m is minutes and upper-case M millions.
import { HlmError } from '../errors.js';

export type ParsedBudget = { kind: 'time'; seconds: number } | { kind: 'tokens'; tokens: number };

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 };
const TOKEN_SCALE: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9 };

export function parseBudget(text: string): ParsedBudget {
  const t = text.trim();
  const duration = /^(?:\d+(?:\.\d+)?[smh])+$/.test(t);
  if (duration) {
    let seconds = 0;
    for (const m of t.matchAll(/(\d+(?:\.\d+)?)([smh])/g)) seconds += Number(m[1]) * UNIT_SECONDS[m[2]];
    if (!(seconds > 0)) throw new HlmError(`--budget ${text}: the duration must be more than 0 s`);
    return { kind: 'time', seconds };
  }
  const m = /^(\d+(?:\.\d+)?)([kKMG]?)(?:\s*tokens?)?$/.exec(t);
  if (m) {
    const tokens = Math.round(Number(m[1]) * TOKEN_SCALE[m[2]]);
    if (!(tokens >= 1)) throw new HlmError(`--budget ${text}: the token count must be at least 1`);
    return { kind: 'tokens', tokens };
  }
  throw new HlmError(
    `--budget ${JSON.stringify(text)}: expected a duration (90s, 20m, 1h30m) or a token count (5M, 500k, 120000)`,
  );
}

/** The budget in words, for tables and messages. */
export function describeBudget(b: ParsedBudget): string {
  if (b.kind === 'tokens') return `${b.tokens.toLocaleString('en-US')} tokens`;
  const s = b.seconds;
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${+(s / 60).toFixed(2)} min`;
  return `${+(s / 3600).toFixed(2)} h`;
}
