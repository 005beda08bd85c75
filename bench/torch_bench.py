#!/usr/bin/env python3
"""PyTorch side of `hlm bench`: the same matmul shapes, the same training step (same GPT-2,
batch, AdamW, gradient clipping; fp32, TF32 off) and GPT-2 prefill/decode, on the same machine,
written as hlm.bench/1 JSON lines so that `hlm bench --compare` puts hlm and PyTorch side by side.

Tests come from hlm itself, so names and params match exactly:
  hlm bench --suite kernel,train --quick --list > tests.jsonl
  python3 bench/torch_bench.py --tests tests.jsonl --device cuda > torch.jsonl
  hlm bench --suite kernel,train --quick --out hlm.jsonl
  hlm bench --from hlm.jsonl --compare torch.jsonl --threshold 100% --format md   # ratio = hlm / PyTorch
Timing matches hlm bench's: by default (--timing sustained) a sample makes calls back to back for at least
25 ms and synchronises once, and the record's method says so (mode, per_sample).
Without --tests it builds the same list as hlm's (--quick: tiny shapes). Tests it cannot run
(hlm's own kernels other than matmul) are skipped. The infer suite (prefill of a prompt, then
greedy decoding with a KV cache) is PyTorch-only until `hlm generate` has its suite: names
'infer-<preset>', tests 'prefill <P>' and 'decode <S>', params {preset, prompt, steps}. Tests of hlm's
packed weights (params.weights f16, int8 or q4, from `hlm bench --weights`) are skipped, each named on stderr.
Needs torch and numpy; reuses bench/torch_gpt2.py's model and losses.
"""
import argparse
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt2 import PRESETS, Gpt2, ce_loss, cwt_loss  # noqa: E402

V = 50257
TRAIN_SHAPES = {'tiny': (4, 64), 'small': (16, 512), 'base': (8, 512)}  # src/bench/train.ts


def default_tests(quick, suites, size=None):
    """The list `hlm bench --list` gives (src/bench/kernel.ts kernelShapes, src/bench/train.ts)."""
    tests = []
    if 'kernel' in suites:
        # The full suite's layer products take the small preset's train step: 16×512 rows.
        sq, rows, d = (256, 128, 64) if quick else (2048, TRAIN_SHAPES['small'][0] * TRAIN_SHAPES['small'][1], 512)
        sq = size or sq
        mm = lambda label, M, N, K, ta, tb: {
            'suite': 'kernel',
            'name': 'matmul',
            'test': f"{label} {M}x{N}x{K} {'T' if ta else 'N'}{'T' if tb else 'N'}",
            'params': {'M': M, 'N': N, 'K': K, 'transA': ta, 'transB': tb},
        }
        tests += [
            mm('square', sq, sq, sq, ta, tb) for ta, tb in [(False, False), (False, True), (True, False), (True, True)]
        ]
        for layer, n_in, n_out in [
            ('attn.c_attn', d, 3 * d),
            ('attn.c_proj', d, d),
            ('mlp.c_fc', d, 4 * d),
            ('mlp.c_proj', 4 * d, d),
        ]:
            tests += [
                mm(f'{layer} fwd', rows, n_out, n_in, False, False),
                mm(f'{layer} dx', rows, n_in, n_out, False, True),
                mm(f'{layer} dW', n_in, n_out, rows, True, False),
            ]
    presets = ['tiny'] if quick else ['tiny', 'small', 'base']
    if 'train' in suites:
        for p in presets:
            B, T = TRAIN_SHAPES[p]
            tests += [
                {
                    'suite': 'train',
                    'name': f'train-{p}',
                    'test': f'{o} step {B}x{T}',
                    'params': {'preset': p, 'objective': o, 'batch': B, 'seq': T, 'optimizer': 'adamw'},
                }
                for o in ('ce', 'cwt')
            ]
    if 'infer' in suites:
        for p in presets:
            n = PRESETS[p]['n_positions']
            prompt = min(512, n // 2)
            steps = min(128, n - prompt)
            params = {'preset': p, 'prompt': prompt, 'steps': steps}
            tests += [
                {'suite': 'infer', 'name': f'infer-{p}', 'test': f'prefill {prompt}', 'params': params},
                {'suite': 'infer', 'name': f'infer-{p}', 'test': f'decode {steps}', 'params': params},
            ]
    return tests


# Two-sided 95% Student t critical values by degrees of freedom (tinybench's rme uses the same).
T95 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def quantile(s, q):
    i = (len(s) - 1) * q
    lo, hi = math.floor(i), math.ceil(i)
    return s[lo] + (s[hi] - s[lo]) * (i - lo)


def stats(ms):
    s, n = sorted(ms), len(ms)
    mean = sum(s) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in s) / (n - 1)) if n > 1 else 0.0
    crit = T95[min(n - 1, len(T95)) - 1] if n > 1 else T95[0]
    rme = 100 * crit * sd / math.sqrt(n) / mean if n > 1 and mean > 0 else 0.0
    return {
        'mean': mean,
        'sd': sd,
        'rme': rme,
        'p50': quantile(s, 0.5),
        'p75': quantile(s, 0.75),
        'p99': quantile(s, 0.99),
        'min': s[0],
        'max': s[-1],
        'n': n,
    }


class Energy:
    """nvidia-smi power sampling on CUDA, RAPL on CPU when readable, else null with the reason."""

    def __init__(self, dev):
        self.dev, self.proc, self.reason = dev, None, None
        self.rapl = [
            f'/sys/class/powercap/{d}/energy_uj'
            for d in (os.listdir('/sys/class/powercap') if os.path.isdir('/sys/class/powercap') else [])
            if re.fullmatch(r'intel-rapl:\d+', d)
        ]
        if dev.type == 'cuda':
            try:
                subprocess.run(['nvidia-smi', '-L'], capture_output=True, check=True, timeout=10)
            except (OSError, subprocess.SubprocessError) as e:
                self.reason = f'nvidia-smi unavailable ({e.__class__.__name__})'
        elif not self.rapl:
            self.reason = 'no RAPL (/sys/class/powercap absent)'
        else:
            try:
                [open(f).read() for f in self.rapl]
            except OSError as e:
                self.reason = f'RAPL not readable ({e.strerror})'

    def start(self):
        self.t0 = time.perf_counter()
        if self.reason:
            return
        if self.dev.type == 'cuda':
            self.proc = subprocess.Popen(
                [
                    'nvidia-smi',
                    '--query-gpu=power.draw',
                    '--format=csv,noheader,nounits',
                    '-lms',
                    '50',
                    '-i',
                    str(self.dev.index or 0),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
        else:
            self.e0 = [int(open(f).read()) for f in self.rapl]

    def stop(self):
        s = time.perf_counter() - self.t0
        if self.reason:
            return {'source': None, 'joules': None, 'watts': None, 'reason': self.reason}
        if self.dev.type == 'cuda':
            self.proc.terminate()
            out = self.proc.communicate()[0]
            w = [float(x) for x in out.split() if re.fullmatch(r'[\d.]+', x)]
            if not w:
                return {
                    'source': None,
                    'joules': None,
                    'watts': None,
                    'reason': f'no power sample within {s * 1e3:.0f} ms',
                }
            watts = sum(w) / len(w)
            return {
                'source': 'nvidia-smi',
                'joules': watts * s,
                'watts': watts,
                'reason': f'mean of {len(w)} power.draw samples x wall time',
            }
        uj = sum(max(0, int(open(f).read()) - e) for f, e in zip(self.rapl, self.e0))
        return {
            'source': 'rapl',
            'joules': uj / 1e6,
            'watts': uj / 1e6 / s if s > 0 else None,
            'reason': 'CPU package energy',
        }


def base_record(dev, args):
    cuda = dev.type == 'cuda'
    props = torch.cuda.get_device_properties(dev) if cuda else None
    return {
        'schema': 'hlm.bench/1',
        'build': {
            'tool': 'torch',
            'version': torch.__version__,
            'commit': None,
            'cuda': torch.version.cuda,
            'precision': args.precision,
            'tf32': 'on' if args.precision == 'tf32' else 'off',
        },
        'env': {
            'os': f'{platform.system()} {platform.release()}',
            'arch': platform.machine(),
            'cpu': platform.processor() or platform.machine(),
            'cores': os.cpu_count() or 1,
            'memory_bytes': os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'),
            'runtime': f'python {platform.python_version()}',
            'host': platform.node(),
        },
        'gpu': {
            'backend': 'cuda' if cuda else 'cpu',
            'vendor': 'nvidia' if cuda else '',
            'architecture': f'sm_{props.major}{props.minor}' if cuda else '',
            'device': props.name if cuda else 'cpu',
            'features': [],
        },
        'method': {
            'harness': 'bench/torch_bench.py',
            'warmup': args.warmup,
            'reps': args.reps,
            'timer': 'time.perf_counter() after synchronize',
            'gpu_timer': 'CUDA events' if cuda else None,
            'mode': args.timing,
            'per_sample': 1,
            'min_sample_ms': MIN_SAMPLE_MS if args.timing == 'sustained' else 0,
        },
    }


MIN_SAMPLE_MS = 25  # a sustained sample lasts at least this long (src/bench/harness.ts)
MAX_PER_SAMPLE = 4096


def per_sample(fn, sync):
    """Calls per sustained sample: doubled (or scaled from the last sample's time) until one lasts MIN_SAMPLE_MS."""
    n, ran = 1, 0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        ms = (time.perf_counter() - t0) * 1e3
        ran += n
        if ms >= MIN_SAMPLE_MS or n >= MAX_PER_SAMPLE:
            return n, ran
        n = min(MAX_PER_SAMPLE, max(2 * n, math.ceil(1.25 * n * MIN_SAMPLE_MS / ms) if ms > 0 else 2 * n))


def measure(fn, dev, args, energy, method):
    """Wall-clock ms per call after the warm-up, and CUDA-event ms in the same samples. Sustained (the default),
    a sample makes n calls back to back and synchronises once, n chosen for MIN_SAMPLE_MS; isolated, it is one call
    and a synchronise. `method` (the record's) is updated with what was done."""
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    n, ran = per_sample(fn, sync) if args.timing == 'sustained' else (1, 0)
    for _ in range(args.warmup * n):
        fn()
    sync()
    method.update(warmup=ran + args.warmup * n, per_sample=n)
    if n > 1:
        method['timer'] = f'time.perf_counter() over {n} back-to-back calls, then synchronize'
    wall, gpu = [], []
    energy.start()
    for _ in range(args.reps):
        if dev.type == 'cuda':
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if dev.type == 'cuda':
            b.record()
        sync()
        wall.append((time.perf_counter() - t0) * 1e3 / n)
        if dev.type == 'cuda':
            gpu.append(a.elapsed_time(b) / n)
    e = energy.stop()
    g = None
    if gpu:
        st = stats(gpu)
        g = {k: st[k] for k in ('mean', 'p50', 'min', 'max', 'n')}
    return stats(wall), g, e


def run_matmul(p, dev, args, energy, method):
    M, N, K, ta, tb = p['M'], p['N'], p['K'], p['transA'], p['transB']
    g = torch.Generator(device='cpu').manual_seed(0)
    a = (torch.rand((K, M) if ta else (M, K), generator=g) * 2 - 1).to(dev)
    b = (torch.rand((N, K) if tb else (K, N), generator=g) * 2 - 1).to(dev)
    out = torch.empty(M, N, device=dev)
    op = lambda x, t: x.t() if t else x
    lat, gms, e = measure(lambda: torch.matmul(op(a, ta), op(b, tb), out=out), dev, args, energy, method)
    ref = torch.matmul(op(a.double(), ta), op(b.double(), tb))
    err = (torch.linalg.norm(out.double() - ref) / torch.linalg.norm(ref)).item()
    flops = 2 * M * N * K
    return {
        'latency_ms': lat,
        'gpu_ms': gms,
        'energy': e,
        'work': {'flops': flops, 'bytes': 4 * (M * K + K * N + M * N), 'tokens': None},
        'throughput': {'unit': 'GFLOP/s', 'value': flops / (lat['p50'] / 1e3) / 1e9, 'peak_fraction': None},
        'check': {
            'reference': 'torch float64 matmul',
            'metric': 'relative L2 error',
            'value': err,
            'tolerance': 1e-5,
            'ok': err <= 1e-5,
            'shape': 'same',
        },
    }


def model_for(preset, dev):
    c = PRESETS[preset]
    torch.manual_seed(0)
    return Gpt2(V, c['n_positions'], c['n_embd'], c['n_layer'], c['n_head']).to(dev)


def run_train(p, dev, args, energy, method):
    """hlm's Trainer step: AdamW (lr 1e-4, weight decay 0.1 on matrices), gradient clipping at 1."""
    model = model_for(p['preset'], dev)
    decay = [t for n, t in model.params.items() if t.dim() == 2]
    rest = [t for n, t in model.params.items() if t.dim() != 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': rest, 'weight_decay': 0.0}], lr=1e-4)
    loss_fn = ce_loss if p['objective'] == 'ce' else cwt_loss
    B, T = p['batch'], p['seq']
    tok = torch.randint(0, V, (B, T + 1), generator=torch.Generator().manual_seed(0)).to(dev)
    x, y = tok[:, :-1], tok[:, 1:]
    last = {}

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.precision == 'bf16'):
            loss = loss_fn(model, model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        last['loss'] = loss

    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)
    lat, gms, e = measure(step, dev, args, energy, method)
    loss = last['loss'].item()
    return {
        'latency_ms': lat,
        'gpu_ms': gms,
        'energy': e,
        'work': {'flops': None, 'bytes': None, 'tokens': B * T},
        'throughput': {'unit': 'tokens/s', 'value': B * T / (lat['p50'] / 1e3), 'peak_fraction': None},
        'check': {
            'reference': 'none: the last loss must be finite',
            'metric': 'loss',
            'value': loss if math.isfinite(loss) else None,
            'ok': math.isfinite(loss),
        },
    }


@torch.no_grad()
def cached_forward(model, x, cache):
    """GPT-2 forward of new tokens x [1, t] after len(cache) positions; cache holds each layer's k, v."""
    d, H = model.w('wte.weight').shape[1], model.n_head
    past = cache[0][0].shape[2] if cache else 0
    t = x.shape[1]
    h = model.w('wte.weight')[x] + model.w('wpe.weight')[past : past + t]
    for i in range(model.n_layer):
        g = lambda n: model.w(f'h.{i}.{n}')
        a = F.layer_norm(h, (d,), g('ln_1.weight'), g('ln_1.bias'), 1e-5)
        q, k, v = (a @ g('attn.c_attn.weight') + g('attn.c_attn.bias')).split(d, dim=2)
        q, k, v = (z.view(1, t, H, d // H).transpose(1, 2) for z in (q, k, v))
        if len(cache) > i:
            k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
        else:
            cache.append((k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d // H)
        if t > 1:
            s = s.masked_fill(
                torch.triu(torch.ones(t, past + t, dtype=torch.bool, device=x.device), past + 1), float('-inf')
            )
        y = (s.softmax(-1) @ v).transpose(1, 2).reshape(1, t, d)
        h = h + y @ g('attn.c_proj.weight') + g('attn.c_proj.bias')
        a = F.layer_norm(h, (d,), g('ln_2.weight'), g('ln_2.bias'), 1e-5)
        h = (
            h
            + F.gelu(a @ g('mlp.c_fc.weight') + g('mlp.c_fc.bias'), approximate='tanh') @ g('mlp.c_proj.weight')
            + g('mlp.c_proj.bias')
        )
    h = F.layer_norm(h[:, -1], (d,), model.w('ln_f.weight'), model.w('ln_f.bias'), 1e-5)
    return h @ model.w('wte.weight').T


def run_infer(p, test, dev, args, energy, method):
    model = model_for(p['preset'], dev)
    prompt = torch.randint(0, V, (1, p['prompt']), generator=torch.Generator().manual_seed(0)).to(dev)
    if test.startswith('prefill'):
        fn, tokens = (lambda: cached_forward(model, prompt, [])), p['prompt']
    elif test.startswith('first-token'):  # time to first token: the prompt, then the argmax read back
        fn, tokens = (lambda: cached_forward(model, prompt, []).argmax(-1).item()), 1
    else:
        prefilled = []
        first = cached_forward(model, prompt, prefilled).argmax(-1, keepdim=True)
        steps = (
            1 if test.startswith('token at') else p['steps']
        )  # 'token at P': one step, its latency = time per output token

        def fn():  # decoding only: each repetition starts from the same prefilled cache
            cache, nxt = list(prefilled), first
            for _ in range(steps):
                nxt = cached_forward(model, nxt, cache).argmax(-1, keepdim=True)
                nxt.item()  # a streaming decoder reads every token back, as hlm's does

        tokens = steps
    lat, gms, e = measure(fn, dev, args, energy, method)
    return {
        'latency_ms': lat,
        'gpu_ms': gms,
        'energy': e,
        'work': {'flops': None, 'bytes': None, 'tokens': tokens},
        'throughput': {'unit': 'tokens/s', 'value': tokens / (lat['p50'] / 1e3), 'peak_fraction': None},
        'check': None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--tests', help='JSON lines from `hlm bench --list` (default: the same list built here)')
    ap.add_argument('--suite', default='kernel,train', help='comma-separated: kernel, train, infer (without --tests)')
    ap.add_argument('--quick', action='store_true', help='tiny shapes, as hlm bench --quick (without --tests)')
    ap.add_argument('--filter', help='only tests whose suite/name/test matches this regular expression')
    ap.add_argument('--reps', type=int, default=None, help='timed samples (default: 5 with --quick, else 20)')
    ap.add_argument(
        '--timing',
        choices=['sustained', 'isolated'],
        default='sustained',
        help='sustained: a sample makes calls back to back (at least 25 ms of them) and synchronises once, as hlm '
        'bench does by default; isolated: a synchronise after every call',
    )
    ap.add_argument('--size', type=int, help='n of the square matmul tests (without --tests; default: 256 or 2048)')
    ap.add_argument('--warmup', type=int, default=None, help='warm-up repetitions (default: 2 with --quick, else 4)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--out', help='write the JSON lines here (default: stdout)')
    ap.add_argument(
        '--precision',
        choices=['fp32', 'tf32', 'bf16'],
        default='fp32',
        help='fp32: TF32 off (the baseline hlm is compared with); tf32: TF32 matmuls; '
        'bf16: the train step under bf16 autocast',
    )
    args = ap.parse_args()
    args.reps = args.reps or (5 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 4)
    torch.backends.cuda.matmul.allow_tf32 = args.precision == 'tf32'
    torch.backends.cudnn.allow_tf32 = args.precision == 'tf32'
    dev = torch.device(args.device)
    if args.tests:
        with open(args.tests) as f:
            tests = [json.loads(line) for line in f if line.strip()]
    else:
        tests = default_tests(args.quick, args.suite.split(','), args.size)
    if args.filter:
        tests = [t for t in tests if re.search(args.filter, f"{t['suite']}/{t['name']}/{t['test']}", re.I)]
    out = open(args.out, 'w') if args.out else sys.stdout
    base, energy = base_record(dev, args), Energy(dev)
    for t in tests:
        p = t['params']
        if p.get('weights', 'f32') != 'f32':  # hlm's packed formats (f16, int8, q4) have no twin here
            print(f"{t['suite']}/{t['name']} {t['test']}: skipped: {p['weights']} weights (f32 only)", file=sys.stderr)
            continue
        method = dict(base['method'])
        if t['name'] == 'matmul':
            run = lambda: run_matmul(p, dev, args, energy, method)
        elif t['suite'] == 'train':
            run = lambda: run_train(p, dev, args, energy, method)
        elif t['suite'] == 'infer':
            run = lambda: run_infer(p, t['test'], dev, args, energy, method)
        else:
            continue  # hlm's own kernels have no PyTorch twin here
        rec = {**base, 'suite': t['suite'], 'name': t['name'], 'test': t['test'], 'status': 'ok', 'params': p}
        rec['method'] = method
        try:
            rec.update(run())
        except Exception as e:  # e.g. CUDA out of memory: a record, and the run goes on
            rec.update(
                status='error',
                error=f'{e.__class__.__name__}: {e}',
                latency_ms=None,
                gpu_ms=None,
                throughput=None,
                check=None,
                work={'flops': None, 'bytes': None, 'tokens': None},
                energy={'source': None, 'joules': None, 'watts': None, 'reason': 'not measured'},
            )
        rec['memory'] = {
            'rss_peak_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            'gpu_peak_bytes': torch.cuda.max_memory_allocated(dev) if dev.type == 'cuda' else None,
        }
        rec['time'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
        out.write(json.dumps(rec) + '\n')
        out.flush()
        tp = rec['throughput']
        print(
            f"{t['suite']}/{t['name']} {t['test']}: {rec['status']} {tp['value']:.3g} {tp['unit']}"
            if tp
            else f"{t['name']} {t['test']}: {rec.get('error')}",
            file=sys.stderr,
        )
        if dev.type == 'cuda':
            torch.cuda.empty_cache()


if __name__ == '__main__':
    main()
