// hlm's layer rules, checked by `npm run lint` (dependency-cruiser). Imports point down the
// table below, never sideways or up; type-only imports count too. README.md ("Architecture")
// draws the same picture. A new folder under src/ must be added here before anything imports it.

// The command layer's classes (commands/) and their shared pieces (cli/) may use every layer below them.
const BELOW_CLI = [
  'experiment',
  'report',
  'bench',
  'check',
  'eval',
  'glue',
  'infer',
  'serve',
  'train',
  'whiten',
  'model',
  'data',
  'gpu',
];
/** What each folder of src/ may import besides itself and the base (util/, errors.ts, log.ts). */
const LAYERS = {
  commands: ['cli', ...BELOW_CLI],
  cli: BELOW_CLI,
  // Experiments: phases over the features below (pretraining, fine-tuning, evaluation, whitening), written as reports.
  experiment: ['report', 'bench', 'eval', 'glue', 'train', 'whiten', 'model', 'data', 'gpu'],
  // Experiments' results and reports: charts, curves, mean ± std over seeds (GLUE's), bench's schema validator.
  report: ['bench', 'glue'],
  // Applications built on the features below them: bench measures training and decoding, GLUE fine-tunes,
  // serve answers OpenAI-style completions with LAMBADA's scorer and the KV-cache generator.
  bench: ['infer', 'train', 'model', 'data', 'kernels', 'reference', 'gpu'],
  glue: ['train', 'model', 'data', 'kernels', 'gpu'],
  serve: ['eval', 'infer', 'model', 'data', 'kernels', 'gpu'],
  // Features: independent of one another.
  train: ['model', 'data', 'kernels', 'gpu'],
  eval: ['model', 'data', 'kernels', 'gpu'],
  infer: ['model', 'data', 'kernels', 'gpu'],
  whiten: ['model', 'data', 'kernels', 'gpu'],
  check: ['model', 'data', 'kernels', 'reference', 'gpu'],
  // The model on the GPU and its files; host-side data (tokenizers, corpora, shards); float64 references.
  model: ['kernels', 'gpu'],
  data: [],
  reference: [],
  kernels: ['gpu'],
  gpu: [],
};
const BASE = ['^src/util/', '^src/(errors|log)\\.ts$'];
const folder = (name) => `^src/${name}/`;
const KNOWN = [...Object.keys(LAYERS).map(folder), ...BASE];

const layerRules = Object.entries(LAYERS).map(([name, allowed]) => ({
  name: `layer-${name}`,
  comment: `src/${name}/ may import only ${[...allowed, 'util', 'errors', 'log'].join(', ')}`,
  severity: 'error',
  from: { path: folder(name) },
  to: { path: '^src/', pathNot: [folder(name), ...allowed.map(folder), ...BASE] },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'no import cycles between files (type-only imports included)',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'layer-util',
      comment: 'src/util/ is the bottom: it may import only errors.ts',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/', pathNot: ['^src/util/', '^src/errors\\.ts$'] },
    },
    {
      name: 'layer-base',
      comment: 'errors.ts and log.ts import nothing of hlm',
      severity: 'error',
      from: { path: '^src/(errors|log)\\.ts$' },
      to: { path: '^src/' },
    },
    {
      name: 'unlisted-folder',
      comment: 'every module of src/ is in a folder of the layer table (.dependency-cruiser.cjs)',
      severity: 'error',
      from: { path: '^(src|test)/' },
      to: { path: '^src/', pathNot: KNOWN },
    },
    {
      name: 'src-not-to-test',
      comment: 'the shipped code never imports the tests or their helpers',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
    {
      name: 'kernels-know-no-files',
      comment: 'kernels and float64 references compute; they never touch files or processes',
      severity: 'error',
      from: { path: '^src/(kernels|reference)/' },
      to: { dependencyTypes: ['core'], path: '^(node:)?(fs|fs/promises|path|child_process|os)$' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'every import resolves',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|\\.out|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
