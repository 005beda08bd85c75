import { HlmCommand } from '../cli/base.js';
import { adapterName, probeAdapters, type AdapterSummary } from '../gpu/adapters.js';

const KEY_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
];

export interface DevicesResult {
  adapters: (Omit<AdapterSummary, 'limits'> & { probe: string; name: string; limits: Record<string, number> })[];
  unavailable: { probe: string; reason: string }[];
  auto: string | null;
}

export default class Devices extends HlmCommand {
  static override summary = 'List the WebGPU adapters hlm can use, and which one --device auto picks.';
  static override description =
    'Probes every backend in the order --device auto prefers: a hardware adapter (Vulkan, Metal or D3D12), ' +
    "Mesa's llvmpipe through Dawn's OpenGL backend, then SwiftShader. Shows each adapter's features, key limits " +
    'and subgroup-matrix configurations, and why a backend found nothing.';
  static override examples = ['<%= config.bin %> devices', '<%= config.bin %> devices --json | jq .auto'];

  async run(): Promise<DevicesResult> {
    await this.parse(Devices);
    const probes = await probeAdapters({ all: true });
    const adapters = probes.flatMap((p) => {
      if (!p.candidate) return [];
      const s = p.candidate.summary;
      const limits = Object.fromEntries(KEY_LIMITS.filter((k) => k in s.limits).map((k) => [k, s.limits[k]]));
      return [{ ...s, probe: p.probe, name: adapterName(s), limits }];
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
    }
    for (const u of unavailable) this.log(`(${u.probe}: ${u.reason})`);
    if (!auto) this.log('no adapter found: see the README for the Mesa packages the software adapter needs');
    return { adapters, unavailable, auto };
  }
}
