#!/usr/bin/env node
// hlm entry point. Dawn's native module can keep Node's event loop alive after the
// work is done, so the command layer destroys the device and exits explicitly.
import { Config, Plugin, execute, flush, handle, run } from '@oclif/core';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

if (process.env.HLM_OUT) {
  // A private build (HLM_OUT=.out/x npm run build): run its commands, without the manifest.
  const root = fileURLToPath(new URL('..', import.meta.url));
  const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  pjson.oclif.commands = `./${process.env.HLM_OUT}/src/commands`;
  const plugin = new Plugin({ root, pjson, type: 'core', isRoot: true, ignoreManifest: true });
  await plugin.load();
  const config = await Config.load({ root, pjson, plugins: new Map([[plugin.name, plugin]]) });
  await run(process.argv.slice(2), config)
    .then(() => flush())
    .catch(handle);
} else {
  await execute({ dir: import.meta.url });
}
