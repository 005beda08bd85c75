#!/usr/bin/env node
// hlm entry point. Dawn's native module can keep Node's event loop alive after the
// work is done, so the command layer destroys the device and exits explicitly.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
