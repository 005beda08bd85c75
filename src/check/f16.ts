// `hlm check`'s rows for mixed precision (--precision f16): the fused loss head reading f16 hidden states and an f16
// embedding table (packed halves at odd offsets), against float64 on the f16-rounded inputs. Evaluation (losses and
// argmax) and training (dh, dwte accumulating) with a logit scale ≠ 1 (the CWT head's 1 / temperature) and a
// gradient multiplier (dynamic loss scaling's scale, a power of two), in chunks with a short last one.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { crossEntropyHead, type CrossEntropySpec } from '../kernels/crossentropy.js';
import { crossEntropyTied, crossEntropyTiedBackward } from '../reference/crossentropy.js';
import { packF16, roundF16 } from '../util/f16.js';
import type { CheckRecord } from './quantized.js';

export async function checkF16Head(gpu: Gpu, next: () => number, record: CheckRecord): Promise<void> {
  const [N, V, d] = [37, 1031, 24];
  const [offH, offE] = [3, 5];
  const temperature = 0.7;
  const lossScale = 1024;
  const random = (n: number) => Float32Array.from({ length: n }, () => 2 * next() - 1);
  const h = random(N * d).map(roundF16);
  const E = random(V * d).map(roundF16);
  const dwte0 = random(V * d);
  const targets = Int32Array.from({ length: N }, (_, i) => (i === 5 ? -1 : Math.floor(next() * V)));
  const count = targets.filter((t) => t >= 0).length;
  const halves = (offset: number, x: Float32Array) => packF16([...new Array<number>(offset).fill(0), ...x]);
  const bufs = {
    H: gpu.upload('check f16 h', halves(offH, h)),
    E: gpu.upload('check f16 wte', halves(offE, E)),
    T: gpu.upload('check targets', targets),
    L: gpu.buffer('check losses', N * 4),
    S: gpu.upload('check scales', Float32Array.of(1 / count, lossScale)),
    DH: gpu.buffer('check dh', N * d * 4),
    DE: gpu.upload('check dwte', dwte0),
    A: gpu.buffer('check argmax', N * 4),
  };
  const common: CrossEntropySpec = {
    N,
    V,
    d,
    chunkRows: 16,
    logitScale: 1 / temperature,
    h: { buffer: bufs.H, offset: offH, dtype: 'f16' },
    wte: { buffer: bufs.E, offset: offE, dtype: 'f16' },
    targets: { buffer: bufs.T },
    losses: { buffer: bufs.L },
  };
  const shape = `${N}x${V}x${d}`;
  const sh = h.map((x) => x / temperature);
  const f = crossEntropyTied(sh, E, targets, N, V, d);
  const dispatches: Dispatch[] = [];
  try {
    const forward = await crossEntropyHead(gpu, { ...common, argmax: { buffer: bufs.A } });
    dispatches.push(...forward.dispatches);
    await gpu.run(forward.dispatches, 'check f16 loss head forward');
    // The argmax's logit must be the row's largest (robust to near-ties between f32 and f64).
    const amax = await gpu.read(bufs.A, Uint32Array, 0, N);
    const top = Array.from({ length: N }, (_, i) => Math.max(...f.logits.subarray(i * V, (i + 1) * V)));
    record(
      'CE forward f16 h, wte + argmax',
      shape,
      [...(await gpu.readF32(bufs.L, 0, N)), ...Array.from(amax, (a, i) => f.logits[i * V + a])],
      [...f.nll, ...top],
      1e-5,
    );

    const train = await crossEntropyHead(gpu, {
      ...common,
      lossScale: { buffer: bufs.S },
      gradScale: { buffer: bufs.S, offset: 1 },
      dh: { buffer: bufs.DH },
      dwte: { buffer: bufs.DE },
    });
    dispatches.push(...train.dispatches);
    await gpu.run(train.dispatches, 'check f16 loss head');
    // logits = h·Eᵀ/τ: the reference's dh (with respect to h/τ) picks up 1/τ.
    const b = crossEntropyTiedBackward(1, sh, E, targets, N, V, d);
    record(
      `CE head f16 h, wte, ×${lossScale}`,
      shape,
      [
        ...(await gpu.readF32(bufs.L, 0, N)),
        ...(await gpu.readF32(bufs.DH, 0, N * d)),
        ...(await gpu.readF32(bufs.DE, 0, V * d)),
      ],
      [...f.nll, ...b.dh.map((g) => (lossScale * g) / temperature), ...b.dE.map((g, i) => lossScale * g + dwte0[i])],
      1e-5,
    );
  } finally {
    gpu.release(...dispatches);
    gpu.free(...Object.values(bufs));
  }
}
