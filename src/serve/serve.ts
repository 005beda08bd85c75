// `hlm serve` as a function: load a checkpoint, build the engine, listen. Encoders load only
// their config and tokenizer: the server starts, lists the model, and refuses completions
// with a 400 that says why.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Gpu } from '../gpu/device.js';
import { tokenizerForCheckpoint } from '../data/tokenizer.js';
import { CONFIG_FILE, loadCheckpoint, readCheckpointConfig } from '../model/checkpoint.js';
import type { ServedModel } from './completion.js';
import { Engine } from './engine.js';
import { HlmServer, type ServerOptions } from './server.js';
import { TokenTexts } from './tokens.js';

export interface ServeOptions extends ServerOptions {
  /** Checkpoint directory; also the model id clients send. */
  model: string;
  /** Most prompts scored in one forward pass. */
  maxBatch: number;
}

export interface Serving {
  server: HlmServer;
  engine: Engine | null;
  model: ServedModel;
  /** Drain the requests in flight, stop listening, free the GPU memory. */
  close(): Promise<void>;
}

export async function startServing(gpu: Gpu, o: ServeOptions): Promise<Serving> {
  const { dir, config } = await readCheckpointConfig(o.model);
  const tokenizer = await tokenizerForCheckpoint(dir, config.vocab_size);
  const model: ServedModel = {
    id: o.model,
    config,
    tokenizer,
    texts: TokenTexts.create(tokenizer),
    eos: config.eos_token_id ?? tokenizer.eotId,
    created: Math.floor((await stat(join(dir, CONFIG_FILE))).mtimeMs / 1000),
  };
  let engine: Engine | null = null;
  let refusal: string | null = null;
  if (config.causal) {
    const ck = await loadCheckpoint(dir, { optimizer: false });
    engine = await Engine.create(gpu, ck.config, ck.params, o.maxBatch);
  } else {
    refusal =
      `${o.model} is an encoder (masked LM, bidirectional attention): it predicts masked tokens, not next tokens, ` +
      'so it has no completions or log-likelihoods to serve; serve a decoder checkpoint';
  }
  try {
    const server = await HlmServer.start(engine, model, o, refusal);
    return {
      server,
      engine,
      model,
      close: async () => {
        await server.close();
        await engine?.drained();
        engine?.destroy();
      },
    };
  } catch (e) {
    engine?.destroy();
    throw e;
  }
}
