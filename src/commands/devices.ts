import { HlmCommand } from '../cli/base.js';
import { adapterName, probeAdapters, type AdapterSummary } from '../gpu/adapters.js';
import { precisionPathLine, precisionPaths, type PrecisionPath } from '../gpu/precision.js';

const KEY_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
];

export interface DevicesResult {
  adapters: (Omit<AdapterSummary, 'limits'> & {
    probe: string;
    name: string;
    limits: Record<string, number>;
    /** f32, packed-f16, shader-f16, subgroup-matrix: whether the adapter supports each and hlm implements it. */
    precision: PrecisionPath[];
  })[];
  unavailable: { probe: string; reason: string }[];
  auto: string | null;
}

export default class Devices extends HlmCommand {
  static override summary = 'List the WebGPU adapters hlm can use, and which one --device auto picks.';
  static override description =
    'Probes every backend in the order --device auto prefers: a hardware adapter (Vulkan, Metal or D3D12), ' +
    "Mesa's llvmpipe through Dawn's OpenGL backend, then SwiftShader. Shows each adapter's features, key limits " +
    'and subgroup-matrix configurations, and why a backend found nothing. Lists the precision paths of each ' +
    'adapter: f32, packed-f16 (f16 storage through core pack2x16float: every adapter), shader-f16 (needs the ' +
    'shader-f16 feature) and subgroup-matrix (needs f16 subgroup-matrix configurations, shader-f16 and ' +
    'HLM_EXPERIMENTAL=subgroup-matrix), with whether the adapter supports each and whether hlm has kernels for it ' +
    '(f32 and packed-f16 so far).';
  static override examples = ['<%= config.bin %> devices', '<%= config.bin %> devices --json | jq .auto'];

  async run(): Promise<DevicesResult> {
    await this.parse(Devices);
    const probes = await probeAdapters({ all: true });
    const adapters = probes.flatMap((p) => {
      if (!p.candidate) return [];
      const s = p.candidate.summary;
      const limits = Object.fromEntries(KEY_LIMITS.filter((k) => k in s.limits).map((k) => [k, s.limits[k]]));
      return [{ ...s, probe: p.probe, name: adapterName(s), limits, precision: precisionPaths(s) }];
    });
    const unavailable = probes.flatMap((p) => (p.candidate ? [] : [{ probe: p.probe, reason: p.reason ?? 'unknown' }]));
    const auto = adapters[0] ? `${adapters[0].backend}: ${adapters[0].name}` : null;
    for (const a of adapters) {
      this.log(`${a.backend}: ${a.name}${auto === `${a.backend}: ${a.name}` ? '   <- auto' : ''}`);
      this.log(
        `  kind ${a.kind}, feature level ${a.featureLevel}, vendor ${a.vendor || '-'}, architecture ` +
          `${a.architecture || '-'}`,
      );
      this.log(`  features: ${a.features.join(', ') || '-'}`);
      this.log(
        `  limits: ${Object.entries(a.limits)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')}`,
      );
      if (a.subgroupMatrixConfigs.length) this.log(`  subgroup matrices: ${JSON.stringify(a.subgroupMatrixConfigs)}`);
      this.log('  precision paths:');
      for (const p of a.precision) this.log(`    ${precisionPathLine(p)}`);
    }
    for (const u of unavailable) this.log(`(${u.probe}: ${u.reason})`);
    if (!auto) this.log('no adapter found: see the README for the Mesa packages the software adapter needs');
    return { adapters, unavailable, auto };
  }
}
