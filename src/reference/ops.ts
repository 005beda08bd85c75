// The float64 op references in one import. Each op lives in its own file; every backward
// takes the upstream gradient first, then the forward's own arguments, and returns the
// gradient of each input as d<name>.
export { type Vec } from './shapes.js';
export { matmul, matmulBackward, type MatmulOptions } from './matmul.js';
export { addBroadcast, addBroadcastBackward } from './add.js';
export { rowSum, rowSumBackward, rowMax, rowMaxBackward, rowArgmax } from './reduce.js';
export { softmaxRows, softmaxRowsBackward, logSumExpRows, logSumExpRowsBackward } from './softmax.js';
export { layerNorm, layerNormBackward } from './layernorm.js';
export { gelu, geluBackward } from './gelu.js';
export { linear, linearBackward } from './linear.js';
export { attention, attentionBackward, type AttentionOptions } from './attention.js';
export {
  softmaxCrossEntropy,
  softmaxCrossEntropyBackward,
  crossEntropyTied,
  crossEntropyTiedBackward,
} from './crossentropy.js';
export { cwtLoss, cwtLossBackward } from './cwt.js';
export { embedding, embeddingBackward } from './embedding.js';
export { adamwStep, sgdStep, clipGradNorm, type AdamWHyper } from './optimizer.js';
