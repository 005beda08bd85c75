// GPT-2's byte-level alphabet: every byte gets a printable Unicode character so that BPE
// vocabularies and merges can be written as text (space is 'Ġ', newline 'Ċ'). Hugging Face's
// ByteLevel pre-tokenizer and decoder use the same table, so tokenizer.json files agree with it.

/** The 256 bytes in GPT-2's order: printable Latin-1 first, then the rest. GPT-2's ids 0..255 follow it. */
export const BYTE_ORDER: readonly number[] = (() => {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) bs.push(b);
  return bs;
})();

/** byte -> its character in the byte-level alphabet */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const table = new Array<string>(256);
  let n = 0;
  for (const b of BYTE_ORDER) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return table;
})();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const utf8 = new TextEncoder();

/** Bytes -> byte-level string. */
export function bytesToSymbols(bytes: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/** Text -> its UTF-8 bytes written in the byte-level alphabet. */
export function textToSymbols(text: string): string {
  return bytesToSymbols(utf8.encode(text));
}

/** Byte-level string -> bytes; null if a character is outside the alphabet. */
export function symbolsToBytes(symbols: string): Uint8Array | null {
  const out = new Uint8Array(symbols.length);
  let i = 0;
  for (const ch of symbols) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return null;
    out[i++] = b;
  }
  return out.subarray(0, i);
}
