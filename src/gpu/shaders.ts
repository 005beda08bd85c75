// WGSL sources live in src/wgsl/*.wgsl and are copied verbatim into the build.
//
// Specialisation is a small, line-preserving templating step, so that compiler messages keep
// the source file's line numbers:
//   - a module-scope `const NAME: T = <default>;` whose NAME is a parameter gets the
//     parameter's value instead of its default (the source stays valid WGSL on its own);
//   - `//#if NAME` ... `//#else` ... `//#endif` keeps one branch (NAME a truthy parameter)
//     and blanks the other, for choices that change declarations (e.g. a binding's type).
// WGSL `override` constants cannot size function-scope arrays (register tiles), hence this.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { HlmError } from '../errors.js';

export type ShaderParams = Record<string, number | boolean>;

/** Where shaders are read from: the build's copy, or HLM_WGSL_DIR when developing shaders. */
export function shaderDir(): string {
  return process.env.HLM_WGSL_DIR ?? fileURLToPath(new URL('../wgsl/', import.meta.url));
}

/** The path users see in messages: the source file, not the build copy. */
export function shaderDisplayPath(name: string): string {
  return process.env.HLM_WGSL_DIR ? join(process.env.HLM_WGSL_DIR, `${name}.wgsl`) : `src/wgsl/${name}.wgsl`;
}

const sources = new Map<string, string>();

export function shaderSource(name: string): string {
  let text = sources.get(name);
  if (text === undefined) {
    const path = join(shaderDir(), `${name}.wgsl`);
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new HlmError(`shader ${shaderDisplayPath(name)} not found (looked in ${path})`);
    }
    sources.set(name, text);
  }
  return text;
}

function literal(type: string, value: number | boolean, where: string): string {
  switch (type) {
    case 'u32':
    case 'i32':
      if (!Number.isInteger(value as number))
        throw new HlmError(`${where}: ${type} parameter needs an integer, got ${value}`);
      return `${value}${type === 'u32' ? 'u' : 'i'}`;
    case 'f32': {
      const s = String(Number(value));
      return /[.eE]/.test(s) || !Number.isFinite(Number(value)) ? s : `${s}.0`;
    }
    case 'bool':
      return value ? 'true' : 'false';
    default:
      throw new HlmError(`${where}: parameters must be u32, i32, f32 or bool constants, not ${type}`);
  }
}

/** Apply the parameters to a shader source; every parameter must be used. */
export function specialise(name: string, source: string, params: ShaderParams): string {
  const used = new Set<string>();
  const out: string[] = [];
  // Stack of [keeping this branch?, was the enclosing region kept?]
  const stack: { keep: boolean; parent: boolean; line: number }[] = [];
  const active = () => stack.every((s) => s.keep);
  const lines = source.split('\n');
  lines.forEach((line, i) => {
    const where = `${shaderDisplayPath(name)}:${i + 1}`;
    const dir = /^\s*\/\/#(if|else|endif)\b\s*(\w*)/.exec(line);
    if (dir) {
      if (dir[1] === 'if') {
        const key = dir[2];
        if (!(key in params)) throw new HlmError(`${where}: //#if ${key} needs a parameter ${key}`);
        used.add(key);
        stack.push({ keep: Boolean(params[key]), parent: active(), line: i + 1 });
      } else if (dir[1] === 'else') {
        const top = stack.at(-1);
        if (!top) throw new HlmError(`${where}: //#else without //#if`);
        top.keep = !top.keep;
      } else if (!stack.pop()) {
        throw new HlmError(`${where}: //#endif without //#if`);
      }
      out.push('');
      return;
    }
    if (!active()) {
      out.push('');
      return;
    }
    const decl = /^(\s*const\s+(\w+)\s*:\s*(\w+)\s*=\s*)([^;]+)(;.*)$/.exec(line);
    if (decl && decl[2] in params) {
      used.add(decl[2]);
      out.push(decl[1] + literal(decl[3], params[decl[2]], where) + decl[5]);
      return;
    }
    out.push(line);
  });
  if (stack.length) throw new HlmError(`${shaderDisplayPath(name)}:${stack[0].line}: //#if without //#endif`);
  const unused = Object.keys(params).filter((k) => !used.has(k));
  if (unused.length)
    throw new HlmError(`${shaderDisplayPath(name)}: no constant or //#if for parameter(s) ${unused.join(', ')}`);
  return out.join('\n');
}
