// Seedable randomness for initialisation (and anything else that must replay exactly from a
// seed): xoshiro128** for uniform 32-bit words, Box–Muller for normals. Math.random is never
// used, so a run is a function of its seed.
//
// A generator is keyed by (seed, stream name). Each parameter tensor draws from its own
// stream, so adding a tensor (a classifier head, an untied output layer) leaves every other
// tensor's initial values unchanged.
import { HlmError } from '../errors.js';

// Module-scope bindings: under jest every global lookup (Math.*) inside a vm context goes
// through an interceptor and costs ~30× more in these hot loops.
const { imul, sqrt, log, cos, sin, floor, PI } = Math;

/** Murmur3's 32-bit finaliser: a bijection that spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over the UTF-16 code units: stream names are short ASCII strings. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Seeds are the integers a user can type: 0 .. 2^53−1. */
export function checkSeed(seed: number, what = 'seed'): number {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new HlmError(`${what} must be a non-negative integer, got ${seed}`);
  return seed;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare = 0; // Box–Muller makes normals in pairs; the second waits here
  private hasSpare = false;

  constructor(seed: number, stream = '') {
    checkSeed(seed);
    const lo = seed >>> 0;
    const hi = floor(seed / 4294967296) >>> 0;
    const key = fmix32(fmix32(lo ^ 0x9e3779b9) ^ fmix32(hi + 0x7f4a7c15) ^ fmix32(hashString(stream) + 0x2545f491));
    // Four distinct words from one key; fmix32 is a bijection, so they cannot all be zero
    // (xoshiro's one forbidden state) unless four different inputs all map to zero.
    this.s0 = fmix32(key + 0x9e3779b9);
    this.s1 = fmix32(key + 0x3c6ef372);
    this.s2 = fmix32(key + 0xdaa66d2b);
    this.s3 = fmix32(key + 0x78dde6e4);
  }

  /** A uniform 32-bit unsigned integer (xoshiro128**). */
  nextU32(): number {
    const result = imul(rotl(imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias (n ≤ 2^32). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296)
      throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log stays finite
    const u2 = this.uniform();
    const r = sqrt(-2 * log(u1));
    const theta = 2 * PI * u2;
    this.spare = r * sin(theta);
    this.hasSpare = true;
    return r * cos(theta);
  }

  /** Fill `out` with normal(0, std²) samples. */
  fillNormal(out: Float32Array, std: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = std * this.normal();
    return out;
  }
}
