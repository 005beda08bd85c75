// Counter-based randomness for data order and masking: every draw is a pure function of
// (seed, step, ...), so a resumed run sees exactly the batches an uninterrupted one would.

/** Mixes integers (any size up to 2^53) into 32 well-spread bits (murmur3's finaliser per word). */
export function hash32(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    for (const word of [x >>> 0, Math.floor(x / 4294967296) >>> 0]) {
      h = Math.imul(h ^ word, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/** Mulberry32 seeded through hash32(...seeds): uniform floats in [0, 1). */
export function streamRng(...seeds: number[]): () => number {
  let a = hash32(...seeds);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seeded permutation of [0, n) evaluated one index at a time, in O(1) memory: a 4-round
 * Feistel network on the smallest even-bit domain holding n, with cycle-walking back into
 * [0, n). Any corpus size, no table to build or store.
 */
export class IndexPermutation {
  private readonly halfBits: number;
  private readonly mask: number;

  constructor(
    readonly n: number,
    private readonly key: readonly number[],
  ) {
    if (!(Number.isInteger(n) && n >= 1 && n <= 2 ** 32))
      throw new RangeError(`permutation size ${n} must be an integer in [1, 2^32]`);
    let bits = 2;
    while (2 ** bits < n) bits += 2;
    this.halfBits = bits / 2;
    this.mask = 2 ** this.halfBits - 1;
  }

  at(i: number): number {
    if (!(Number.isInteger(i) && i >= 0 && i < this.n))
      throw new RangeError(`permutation index ${i} outside [0, ${this.n})`);
    let x = i;
    do x = this.round4(x);
    while (x >= this.n);
    return x;
  }

  private round4(x: number): number {
    const h = this.halfBits;
    const m = this.mask;
    let left = Math.floor(x / 2 ** h) & m;
    let right = x & m;
    for (let r = 0; r < 4; r++) {
      const next = (left ^ hash32(...this.key, r, right)) & m;
      left = right;
      right = next;
    }
    return left * 2 ** h + right;
  }
}
