// `hlm check`'s rows for packed weights (f16, int8, q4): the quantized product and embedding on odd shapes (K not
// a multiple of a word or of q4's group of 32), and a tiny GPT-2's forward with every weight packed, each against
// float64 on the weights as packed (src/reference/matmul-q.ts unpacks them on its own).
import type { Gpu } from '../gpu/device.js';
import { embeddingForwardQ } from '../kernels/embedding-q.js';
import { matmulQ, rowWords, type QuantFormat } from '../kernels/matmul-q.js';
import { preset } from '../model/config.js';
import { Gpt2 } from '../model/gpt2.js';
import { paramLayout } from '../model/params.js';
import { quantizeMatrix, quantLayout, quantizeParams } from '../model/quantize.js';
import { embedding as embeddingRef } from '../reference/embedding.js';
import { gpt2Forward } from '../reference/gpt2.js';
import { dequantize, matmulQ as matmulQRef, unpackParams } from '../reference/matmul-q.js';

export type CheckRecord = (
  kernel: string,
  shape: string,
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  tol: number,
) => void;

export async function checkQuantized(gpu: Gpu, next: () => number, record: CheckRecord): Promise<void> {
  const random = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * (2 * next() - 1));
  for (const format of ['f16', 'int8', 'q4'] as QuantFormat[]) {
    // One-row tiles (M < 16) and the big ones.
    for (const [M, N, K] of [
      [3, 129, 65],
      [67, 129, 45],
    ]) {
      const a = random(M * K);
      const w = random(N * K);
      const words = quantizeMatrix(format, N, K, (r, c) => w[r * K + c]);
      const A = gpu.upload('check A', a);
      const W = gpu.upload('check W', words);
      const C = gpu.buffer('check C', M * N * 4);
      const packed = { format, rows: N, cols: K, buffer: W, offset: 0, scales: N * rowWords(format, K) };
      const d = await matmulQ(gpu, { M, N, K, a: { buffer: A }, w: packed, c: { buffer: C } });
      await gpu.run([d], 'check quantized matmul');
      const got = await gpu.readF32(C, 0, M * N);
      record(`matmul ${format}`, `${M}x${N}x${K}`, got, matmulQRef(format, a, words, M, N, K), 1e-5);
      gpu.release(d);
      gpu.free(A, W, C);
    }
    {
      const [B, T, d, V] = [2, 9, 45, 300];
      const wte = random(V * d);
      const wpe = random(T * d);
      const tokens = Uint32Array.from({ length: B * T }, () => Math.floor(next() * V));
      const words = quantizeMatrix(format, V, d, (r, c) => wte[r * d + c]);
      const [W, P, I] = [gpu.upload('check wte', words), gpu.upload('check wpe', wpe), gpu.upload('check ids', tokens)];
      const O = gpu.buffer('check out', B * T * d * 4);
      const packed = { format, rows: V, cols: d, buffer: W, offset: 0, scales: V * rowWords(format, d) };
      const e = await embeddingForwardQ(gpu, {
        B,
        T,
        d,
        tokens: { buffer: I },
        wte: packed,
        wpe: { buffer: P },
        out: { buffer: O },
      });
      await gpu.run([e], 'check quantized embedding');
      const ref = embeddingRef(dequantize(format, words, V, d), wpe, tokens, B, T, d);
      record(`embedding ${format}`, `${B}x${T}x${d} V=${V}`, await gpu.readF32(O, 0, B * T * d), ref, 1e-6);
      gpu.release(e);
      gpu.free(W, P, I, O);
    }
    // The whole forward with packed weights: every linear layer, the token table, f32 layer norms and biases.
    {
      const config = { ...preset('tiny'), vocab_size: 37, n_positions: 9, n_embd: 40, n_layer: 2, n_head: 4 };
      const layout = paramLayout(config);
      const params = new Float32Array(layout.total);
      for (const t of layout.tensors) {
        const one = t.name.includes('ln_') && t.name.endsWith('weight') ? 1 : 0;
        params.set(
          random(t.size, 0.3).map((v) => v + one),
          t.offset,
        );
      }
      const T = 9;
      const inputs = Uint32Array.from({ length: T }, () => Math.floor(next() * config.vocab_size));
      const model = await Gpt2.create(gpu, config, { B: 1, T, train: false, weights: format });
      try {
        model.writeParams(params);
        model.setTokens(inputs);
        await gpu.run(model.forward, 'check packed model');
        const q = quantLayout(layout, format);
        const named = unpackParams(
          format,
          layout.tensors,
          params,
          q.quantized,
          quantizeParams(q, layout, params).words,
        );
        const { hidden } = gpt2Forward(named, config, inputs, 1, T, { logProbs: false });
        record(`GPT-2 forward, ${format}`, `decoder 1x${T}`, await gpu.readF32(model.hf), hidden, 1e-4);
      } finally {
        model.destroy();
      }
    }
  }
}
