#!/usr/bin/env python3
"""PyTorch companion to hlm: the same GPT-2 (Hugging Face layout), the same CE and CWT losses.

Two uses:
  loss   an independent check that an hlm checkpoint means what hlm says. It reads the
         checkpoint's model.safetensors and config.json, takes batch 0 of an llm.c token shard
         in hlm's sequential order (row r = tokens [r*T, r*T + T + 1)), and prints the
         mean CE loss. `hlm pretrain --init <ckpt> --data <shard> --order sequential
         --optimizer sgd --lr 0 --steps 1` logs the same number as its step-1 loss.
  bench  training tokens/s of PyTorch eager fp32 (TF32 off) for a preset, batch and objective,
         with AdamW, as one JSON line (suite "train", hlm.bench/1-style fields), for side-by-side
         runs with `hlm compare-objectives` on the same machine.

Needs only torch and numpy (Debian: python3-torch). Examples:
  python3 bench/torch_gpt2.py loss --checkpoint runs/pretrain/checkpoint --shard data.bin --batch 4 --seq 64
  python3 bench/torch_gpt2.py bench --preset small --batch 16 --seq 512 --objective cwt --steps 20 --device cuda
"""
import argparse
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

PRESETS = {
    'tiny': dict(n_layer=2, n_embd=64, n_head=4, n_positions=128),
    'small': dict(n_layer=6, n_embd=512, n_head=8, n_positions=1024),
    'base': dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024),
}
DTYPES = {'F32': np.float32, 'F16': np.float16, 'F64': np.float64, 'I64': np.int64}


def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        a, b = t['data_offsets']
        arr = np.frombuffer(data[8 + n + a : 8 + n + b], dtype=DTYPES[t['dtype']]).reshape(t['shape'])
        out[name.removeprefix('transformer.')] = torch.from_numpy(arr.astype(np.float32).copy())
    return out


class Gpt2(torch.nn.Module):
    """GPT-2 with Hugging Face parameter names and Conv1D (input-major) weights."""

    def __init__(self, V, n_positions, n_embd, n_layer, n_head, causal=True):
        super().__init__()
        self.n_head, self.causal = n_head, causal
        d = n_embd
        p = lambda *s: torch.nn.Parameter(torch.empty(*s))
        # ParameterDict keys may not contain '.': Hugging Face names are stored with '_'.
        self.params = torch.nn.ParameterDict(
            {'wte_weight': p(V, d), 'wpe_weight': p(n_positions, d), 'ln_f_weight': p(d), 'ln_f_bias': p(d)}
        )
        for i in range(n_layer):
            for name, shape in [
                ('ln_1.weight', (d,)),
                ('ln_1.bias', (d,)),
                ('attn.c_attn.weight', (d, 3 * d)),
                ('attn.c_attn.bias', (3 * d,)),
                ('attn.c_proj.weight', (d, d)),
                ('attn.c_proj.bias', (d,)),
                ('ln_2.weight', (d,)),
                ('ln_2.bias', (d,)),
                ('mlp.c_fc.weight', (d, 4 * d)),
                ('mlp.c_fc.bias', (4 * d,)),
                ('mlp.c_proj.weight', (4 * d, d)),
                ('mlp.c_proj.bias', (d,)),
            ]:
                self.params[f'h.{i}.{name}'.replace('.', '_')] = p(*shape)
        self.n_layer = n_layer
        self.init_gpt2()

    def w(self, name):
        return self.params[name.replace('.', '_')]

    def init_gpt2(self):
        with torch.no_grad():
            for name, t in self.params.items():
                if name.endswith('bias'):
                    t.zero_()
                elif name.startswith('ln') or '_ln_' in name:
                    t.fill_(1)
                else:
                    t.normal_(0, 0.02 / math.sqrt(2 * self.n_layer) if name.endswith('c_proj_weight') else 0.02)

    def load(self, tensors):
        with torch.no_grad():
            for name, t in tensors.items():
                # HF's causal-mask buffers (h.N.attn.bias / masked_bias) are not parameters.
                if name == 'lm_head.weight' or name.split('.')[-2:] in (['attn', 'bias'], ['attn', 'masked_bias']):
                    continue
                self.w(name).copy_(t)

    def forward(self, x):
        B, T = x.shape
        d = self.w('wte.weight').shape[1]
        H = self.n_head
        h = self.w('wte.weight')[x] + self.w('wpe.weight')[:T]
        for i in range(self.n_layer):
            g = lambda n: self.w(f'h.{i}.{n}')
            a = F.layer_norm(h, (d,), g('ln_1.weight'), g('ln_1.bias'), 1e-5)
            q, k, v = (a @ g('attn.c_attn.weight') + g('attn.c_attn.bias')).split(d, dim=2)
            q, k, v = (t.view(B, T, H, d // H).transpose(1, 2) for t in (q, k, v))
            s = (q @ k.transpose(-1, -2)) / math.sqrt(d // H)
            if self.causal:
                s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1), float('-inf'))
            y = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, d)
            h = h + y @ g('attn.c_proj.weight') + g('attn.c_proj.bias')
            a = F.layer_norm(h, (d,), g('ln_2.weight'), g('ln_2.bias'), 1e-5)
            m = F.gelu(a @ g('mlp.c_fc.weight') + g('mlp.c_fc.bias'), approximate='tanh')
            h = h + m @ g('mlp.c_proj.weight') + g('mlp.c_proj.bias')
        return F.layer_norm(h, (d,), self.w('ln_f.weight'), self.w('ln_f.bias'), 1e-5)


def ce_loss(model, hidden, targets):
    logits = hidden.reshape(-1, hidden.shape[-1]) @ model.w('wte.weight').T
    return F.cross_entropy(logits, targets.reshape(-1), ignore_index=-1)


def cwt_loss(model, hidden, targets, temperature=1.0):
    keep = targets.reshape(-1) >= 0
    o = hidden.reshape(-1, hidden.shape[-1])[keep]
    e = model.w('wte.weight')[targets.reshape(-1)[keep]]
    scores = (o @ e.T) / temperature
    return F.cross_entropy(scores, torch.arange(len(o), device=o.device))


def shard_batch(path, B, T):
    header = np.fromfile(path, dtype='<i4', count=256)
    if header[0] != 20240520:
        sys.exit(f'{path}: not an llm.c token shard')
    tokens = np.fromfile(path, dtype='<u2' if header[1] == 1 else '<u4', offset=1024, count=B * T + 1).astype(np.int64)
    if len(tokens) < B * T + 1:
        sys.exit(f'{path}: {len(tokens)} tokens, batch 0 needs {B * T + 1}')
    rows = np.stack([tokens[r * T : r * T + T + 1] for r in range(B)])
    return torch.from_numpy(rows[:, :-1]), torch.from_numpy(rows[:, 1:])


def cmd_loss(a):
    cfg = json.load(open(f'{a.checkpoint}/config.json'))
    model = Gpt2(
        cfg['vocab_size'],
        cfg['n_positions'],
        cfg['n_embd'],
        cfg['n_layer'],
        cfg['n_head'],
        cfg.get('hlm', {}).get('causal', True),
    )
    model.load(read_safetensors(f'{a.checkpoint}/model.safetensors'))
    x, y = shard_batch(a.shard, a.batch, a.seq)
    with torch.no_grad():
        loss = ce_loss(model, model(x), y).item()
    print(json.dumps({'checkpoint': a.checkpoint, 'batch': a.batch, 'seq': a.seq, 'loss': loss}))


def cmd_bench(a):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    dev = torch.device(a.device)
    p = PRESETS[a.preset]
    model = Gpt2(50257, p['n_positions'], p['n_embd'], p['n_layer'], p['n_head']).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    loss_fn = ce_loss if a.objective == 'ce' else cwt_loss
    x = torch.randint(0, 50257, (a.batch, a.seq), device=dev)
    y = torch.randint(0, 50257, (a.batch, a.seq), device=dev)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == 'cuda' else (lambda: None)
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, model(x), y)
        loss.backward()
        opt.step()
        sync()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    print(
        json.dumps(
            {
                'schema': 'hlm.bench/1',
                'suite': 'train',
                'name': f'torch-{a.preset}-{a.objective}',
                'status': 'ok',
                'params': {
                    'preset': a.preset,
                    'batch': a.batch,
                    'seq': a.seq,
                    'objective': a.objective,
                    'optimizer': 'adamw',
                    'dtype': 'fp32',
                    'tf32': False,
                },
                'build': {'torch': torch.__version__},
                'gpu': {'device': str(dev), 'name': torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'},
                'method': {'warmup': a.warmup, 'reps': a.steps, 'timer': 'perf_counter after synchronize'},
                'latency_ms': {'p50': median * 1e3, 'min': times[0] * 1e3, 'max': times[-1] * 1e3, 'n': len(times)},
                'throughput': {'unit': 'tokens/s', 'value': a.batch * a.seq / median},
                'memory': {'gpu_peak_bytes': torch.cuda.max_memory_allocated() if dev.type == 'cuda' else None},
            }
        )
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    l = sub.add_parser('loss')
    l.add_argument('--checkpoint', required=True)
    l.add_argument('--shard', required=True)
    l.add_argument('--batch', type=int, default=4)
    l.add_argument('--seq', type=int, default=64)
    b = sub.add_parser('bench')
    b.add_argument('--preset', choices=PRESETS, default='tiny')
    b.add_argument('--objective', choices=['ce', 'cwt'], default='ce')
    b.add_argument('--batch', type=int, default=8)
    b.add_argument('--seq', type=int, default=64)
    b.add_argument('--steps', type=int, default=10)
    b.add_argument('--warmup', type=int, default=2)
    b.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    a = ap.parse_args()
    cmd_loss(a) if a.cmd == 'loss' else cmd_bench(a)


if __name__ == '__main__':
    main()
