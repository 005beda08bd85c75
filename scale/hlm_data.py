"""hlm's training data in Python, draw for draw: llm.c token shards, the batch order (sequential and
shuffled), the masked-LM recipe of encoders, the learning-rate schedule and the default batch shape.

Each function mirrors one in hlm's TypeScript (named in its docstring) and must give the same numbers:
test/scale.ddp.test.ts checks them against hlm. Needs only numpy, not torch.
"""

import json
import math
import os
import re

import numpy as np

SHARD_MAGIC = 20240520
SHARD_HEADER_BYTES = 256 * 4
M32 = 0xFFFFFFFF


class DataError(Exception):
    """A user error about the data: printed as one `hlm: ...` line."""


# ---------------------------------------------------------------- counter-based randomness (data/random.ts)


def hash32(*xs):
    """hash32: integers (0 <= x < 2^53) mixed into 32 bits, murmur3's finaliser per 32-bit word."""
    h = 0x9E3779B9
    for x in xs:
        for word in (x & M32, (x >> 32) & M32):
            h = ((h ^ word) * 0x85EBCA6B) & M32
            h ^= h >> 13
            h = (h * 0xC2B2AE35) & M32
            h ^= h >> 16
    return h


def stream_rng(*seeds):
    """streamRng: Mulberry32 seeded through hash32(*seeds), uniform floats in [0, 1)."""
    state = [hash32(*seeds)]

    def draw():
        a = (state[0] + 0x6D2B79F5) & M32
        state[0] = a
        t = ((a ^ (a >> 15)) * (a | 1)) & M32
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & M32)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296

    return draw


class IndexPermutation:
    """IndexPermutation: a seeded permutation of [0, n), a 4-round Feistel network with cycle-walking."""

    def __init__(self, n, key):
        if not (isinstance(n, int) and 1 <= n <= 2**32):
            raise ValueError(f'permutation size {n} must be an integer in [1, 2^32]')
        bits = 2
        while 2**bits < n:
            bits += 2
        self.n, self.key, self.half, self.mask = n, tuple(key), bits // 2, 2 ** (bits // 2) - 1

    def at(self, i):
        x = i
        while True:
            left, right = (x >> self.half) & self.mask, x & self.mask
            for r in range(4):
                left, right = right, (left ^ hash32(*self.key, r, right)) & self.mask
            x = (left << self.half) + right
            if x < self.n:
                return x


# ---------------------------------------------------------------- masked LM (data/mlm.ts)


def js_round(x):
    """Math.round: halves go up (Python's round() goes to even)."""
    r = math.floor(x)
    return r + 1 if x - r >= 0.5 else r


def mlm_count(n, rate=0.15):
    """mlmCount: how many of n positions a batch selects."""
    return min(n, max(1, js_round(rate * n)))


def mask_tokens(tokens, seed, step, mask_id, vocab_size, special_ids=(), rate=0.15, mask_frac=0.8, random_frac=0.1):
    """maskTokens over a whole batch's B*T inputs: (inputs, targets) with targets -1 where not selected."""
    tokens = [int(t) for t in np.asarray(tokens).reshape(-1)]
    n = len(tokens)
    special = set(int(s) for s in special_ids)
    rng = stream_rng(seed, step, 0x6D6C6D)
    candidates = [i for i in range(n) if tokens[i] not in special] or list(range(n))
    k = min(len(candidates), mlm_count(n, rate))
    for i in range(k):
        j = i + math.floor(rng() * (len(candidates) - i))
        candidates[i], candidates[j] = candidates[j], candidates[i]
    inputs = list(tokens)
    targets = [-1] * n
    for p in sorted(candidates[:k]):
        targets[p] = tokens[p]
        u = rng()
        if u < mask_frac:
            inputs[p] = mask_id
        elif u < mask_frac + random_frac:
            while True:
                t = math.floor(rng() * vocab_size)
                if t not in special:
                    break
            inputs[p] = t
    return np.array(inputs, dtype=np.int64), np.array(targets, dtype=np.int64)


# ---------------------------------------------------------------- schedule, defaults (train/schedule.ts, pretrain.ts)


def lr_at(step, lr, warmup, steps, schedule):
    """lrAt: linear warm-up from 0, then constant, linear decay to 0, or cosine decay to lr/10."""
    if warmup > 0 and step <= warmup:
        return lr * step / warmup
    if schedule == 'constant':
        return lr
    span = max(1, steps - warmup)
    progress = min(1, max(0, (step - warmup) / span))
    if schedule == 'linear':
        return lr * (1 - progress)
    low = lr / 10
    return low + 0.5 * (lr - low) * (1 + math.cos(math.pi * progress))


def training_defaults(n_embd, causal, n_positions):
    """trainingDefaults: batch size, sequence length and lr by the model's width."""
    if n_embd <= 128:
        t = (16, 128, 6e-3) if causal else (128, 64, 6e-3)
    elif n_embd <= 512:
        t = (16, 512, 1e-3)
    else:
        t = (8, 1024, 6e-4)
    return {'batch_size': t[0], 'seq_len': min(t[1], n_positions), 'lr': t[2]}


# ---------------------------------------------------------------- --data: shards, directories, hlm's cache


def _skipped_in_directory(name):
    return name.startswith('.') or re.search(r'(^|[_.-])(readme|license|licence|copying|notice)([_.-]|$)', name, re.I)


def _is_shard(path):
    if path.lower().endswith('.bin'):
        return True
    with open(path, 'rb') as f:
        head = f.read(4)
    return len(head) == 4 and int.from_bytes(head, 'little', signed=True) == SHARD_MAGIC


def list_data_files(paths):
    """listCorpusFiles: files as given, directories walked by name (hidden and README/LICENSE-like files skipped)."""
    if not paths:
        raise DataError('no --data given')
    out = []

    def visit(path, explicit):
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if not _skipped_in_directory(name):
                    visit(os.path.join(path, name), False)
        elif os.path.isfile(path):
            out.append(path)
        elif explicit:
            raise DataError(f'--data {path}: not a regular file or directory')

    for p in paths:
        if not os.path.exists(p):
            raise DataError(f'--data {p}: no such file or directory')
        before = len(out)
        visit(p, True)
        if len(out) == before:
            raise DataError(f'--data {p}: no corpus files in this directory')
    return out


def cache_root():
    """cacheRoot: $HLM_CACHE_DIR, else $XDG_CACHE_HOME/hlm, else ~/.cache/hlm."""
    if os.environ.get('HLM_CACHE_DIR'):
        return os.path.abspath(os.environ['HLM_CACHE_DIR'])
    xdg = os.environ.get('XDG_CACHE_HOME')
    return os.path.join(os.path.abspath(xdg) if xdg else os.path.join(os.path.expanduser('~'), '.cache'), 'hlm')


def cached_shards(texts, eot):
    """The shards `hlm pretrain` tokenised these text files into (tokenizeCorpus's cache entry), in order."""
    root = os.path.join(cache_root(), 'shards')
    want = [(os.path.abspath(p), os.stat(p)) for p in texts]
    found = []
    for entry in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        try:
            with open(os.path.join(root, entry, 'manifest.json')) as f:
                m = json.load(f)
        except (OSError, ValueError):
            continue
        files = m.get('key', {}).get('files', [])
        if m.get('format') != 'hlm.shards/1' or len(files) != len(want) or m['key'].get('eot') != eot:
            continue
        same = all(
            f['path'] == path and f['size'] == st.st_size and abs(f['mtimeMs'] - st.st_mtime_ns / 1e6) < 1e-3
            for f, (path, st) in zip(files, want)
        )
        if same:
            found.append([os.path.join(root, entry, s['file']) for s in m['shards']])
    if not found:
        raise DataError(
            f'--data {" ".join(texts)}: text that hlm has not tokenised (no entry in {root} for these files at '
            f'their current size and time); run hlm pretrain on it once (e.g. --steps 1), or give .bin token shards'
        )
    if len(found) > 1:
        raise DataError(
            f'--data {" ".join(texts)}: {len(found)} entries of {root} hold these files (other tokenizers?): '
            f'give the shards of the right one, e.g. {os.path.dirname(found[0][0])}/*.bin'
        )
    return found[0]


def prepare_data(paths, eot):
    """prepareData: .bin shards as given, then the shards of the text files (from hlm's cache)."""
    files = list_data_files(paths)
    shards = [f for f in files if _is_shard(f)]
    texts = [f for f in files if not _is_shard(f)]
    return shards + (cached_shards(texts, eot) if texts else [])


class Shard:
    def __init__(self, path):
        size = os.path.getsize(path)
        if size < SHARD_HEADER_BYTES:
            raise DataError(f'token shard {path} is truncated: {size} bytes, less than the 1024-byte header')
        magic, version, count = np.fromfile(path, dtype='<i4', count=3)
        if magic != SHARD_MAGIC:
            raise DataError(f'{path} is not an llm.c token shard: magic {magic}, expected {SHARD_MAGIC}')
        if version not in (1, 2):
            raise DataError(f'token shard {path}: version {version} is unknown (1 = uint16 tokens, 2 = uint32)')
        width = 2 if version == 1 else 4
        want = SHARD_HEADER_BYTES + int(count) * width
        if size != want:
            raise DataError(f'token shard {path}: {size} bytes, its header of {count} tokens says {want}')
        self.path, self.count = path, int(count)
        self.tokens = (
            np.memmap(
                path, dtype='<u2' if width == 2 else '<u4', mode='r', offset=SHARD_HEADER_BYTES, shape=(int(count),)
            )
            if count
            else None
        )


class BatchSource:
    """BatchSource: batch b is a pure function of (shards, B, T, order, seed, b); rows of T+1 tokens."""

    def __init__(self, paths, batch_size, seq_len, order, seed, vocab_size):
        if not paths:
            raise DataError('no token shards to read')
        self.shards = [s for s in (Shard(p) for p in paths) if s.count]
        self.starts = np.cumsum([0] + [s.count for s in self.shards])
        self.tokens = int(self.starts[-1])
        self.B, self.T, self.order, self.seed, self.vocab_size = batch_size, seq_len, order, seed, vocab_size
        if self.tokens < seq_len + 1:
            raise DataError(
                f'the data has {self.tokens} tokens, fewer than one sequence of {seq_len} plus its next token'
            )
        self.windows = (self.tokens - 1) // seq_len
        self.position = 0
        self._perm = None

    def row_start(self, g):
        if self.order == 'sequential':
            return (g * self.T) % self.tokens
        epoch = g // self.windows
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, IndexPermutation(self.windows, [self.seed, epoch]))
        return self._perm[1].at(g % self.windows) * self.T

    def read(self, start, n):
        """Tokens [start, start + n) of the endless stream (the shards end to end, repeating)."""
        out = np.empty(n, dtype=np.int64)
        pos, filled = start % self.tokens, 0
        k = int(np.searchsorted(self.starts, pos, side='right')) - 1
        while filled < n:
            s = self.shards[k]
            at = pos - int(self.starts[k])
            take = min(n - filled, s.count - at)
            chunk = s.tokens[at : at + take]
            bad = np.nonzero(chunk >= self.vocab_size)[0]
            if len(bad):
                raise DataError(
                    f'token shard {s.path}: token {chunk[bad[0]]} at index {at + bad[0]} is outside the vocabulary '
                    f'of {self.vocab_size} (made with another tokenizer?)'
                )
            out[filled : filled + take] = chunk
            filled += take
            pos += take
            if pos == int(self.starts[k + 1]):
                k = (k + 1) % len(self.shards)
                pos = int(self.starts[k])
        return out

    def batch_at(self, b):
        """(inputs, targets), each B x T int64: row r of batch b and its next tokens."""
        rows = np.stack([self.read(self.row_start(b * self.B + r), self.T + 1) for r in range(self.B)])
        return rows[:, :-1], rows[:, 1:]

    def state(self):
        return {
            'order': self.order,
            'seed': self.seed,
            'batchSize': self.B,
            'seqLen': self.T,
            'tokens': self.tokens,
            'position': self.position,
        }

    def restore(self, state):
        mine = self.state()
        for k in ('order', 'seed', 'batchSize', 'seqLen', 'tokens'):
            if state.get(k) != mine[k]:
                raise DataError(f'cannot resume the data order: saved {k} {state.get(k)}, now {mine[k]}')
        pos = state.get('position')
        if not (isinstance(pos, int) and pos >= 0):
            raise DataError(f'cannot resume the data order: bad position {pos}')
        self.position = pos
