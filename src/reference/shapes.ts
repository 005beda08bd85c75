// Argument checks shared by the references. A reference that silently read past the end of
// a too-short array (undefined → NaN) or wrapped a bad index would "agree" with a buggy
// kernel in the worst way, so every entry point checks its lengths and ids up front.

/** Any numeric array a reference accepts as input; outputs are always Float64Array. */
export type Vec = ArrayLike<number>;

export function expectLength(name: string, x: Vec, n: number): void {
  if (x.length !== n) throw new RangeError(`${name}: expected ${n} elements, got ${x.length}`);
}

export function expectDims(dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${k} must be a non-negative integer, got ${v}`);
  }
}

export function expectIndex(name: string, i: number, n: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`${name}: index ${i} outside [0, ${n})`);
}
