#!/usr/bin/env node
// What hlm's GPU memory accounting (gpu.memory().bytesPeak) reports for building one training step under the
// hardware plan, without a GPU: `hlm bench`'s train-step Trainer is built through the real code path on the
// software adapter with its kind forced to 'hardware' and H200-like limits (4 GiB bindings), so every kernel
// plans as on a big GPU (128×128 tiles, split-K, the CE head's hardware chunks). Buffers over 4 KiB are created
// at 16 bytes (the accounting keeps the requested size), bind groups are not created and nothing runs.
//   npm run build && node scripts/memory-plan.mjs [--preset small] [--objective ce] [--batch 16] [--seq 512]
//     [--grad-accum 1] [--top 20] [--json]
import { parseArgs } from 'node:util';

process.env.EGL_PLATFORM ??= 'surfaceless';
const { values: a } = parseArgs({
  options: {
    preset: { type: 'string', default: 'small' },
    objective: { type: 'string', default: 'ce' },
    batch: { type: 'string', default: '16' },
    seq: { type: 'string', default: '512' },
    'grad-accum': { type: 'string', default: '1' },
    top: { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
  },
});
const dist = new URL('../dist/src/', import.meta.url);
const { Gpu } = await import(new URL('gpu/device.js', dist));
const { Trainer } = await import(new URL('train/trainer.js', dist));
const { preset } = await import(new URL('model/config.js', dist));

const gpu = await Gpu.open('cpu');
gpu.adapter.kind = 'hardware';
Object.assign(gpu.limits, { maxStorageBufferBindingSize: 2 ** 32 - 4, maxBufferSize: 2 ** 40 });
const device = gpu.device;
const create = device.createBuffer.bind(device);
const planned = new WeakSet();
device.createBuffer = (d) => {
  if (d.size <= 4096) return create(d);
  const b = create({ ...d, size: 16 });
  Object.defineProperty(b, 'size', { value: d.size });
  planned.add(b);
  return b;
};
device.createBindGroup = () => ({});
const write = device.queue.writeBuffer.bind(device.queue);
device.queue.writeBuffer = (b, ...rest) => {
  if (!planned.has(b)) write(b, ...rest);
};

const config = { ...preset(a.preset), objective: a.objective };
const B = Number(a.batch);
const T = Number(a.seq);
const trainer = await Trainer.create(gpu, config, {
  B,
  T,
  gradAccum: Number(a['grad-accum']),
  optimizer: 'adamw',
  weightDecay: 0.1,
  gradClip: 1,
  historySize: 1,
});
const m = gpu.memory();
const byLabel = new Map();
for (const { label, size } of gpu['live'].values()) {
  const k = label.replace(/\d+/g, '#');
  byLabel.set(k, (byLabel.get(k) ?? 0) + size);
}
const top = [...byLabel].sort((x, y) => y[1] - x[1]).slice(0, Number(a.top));
const result = {
  preset: a.preset,
  objective: a.objective,
  batch: B,
  seq: T,
  bytesPeak: m.bytesPeak,
  buffers: m.buffers,
};
if (a.json) console.log(JSON.stringify({ ...result, top: Object.fromEntries(top) }));
else {
  console.log(`${a.preset} ${a.objective} ${B}x${T}: peak ${m.bytesPeak} bytes (${(m.bytesPeak / 1e9).toFixed(3)} GB)`);
  for (const [k, v] of top) console.log(`${(v / 1e6).toFixed(1).padStart(10)} MB  ${k}`);
}
trainer.destroy();
gpu.destroy();
