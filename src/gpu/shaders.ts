// WGSL sources live in src/wgsl/*.wgsl, shared pieces in src/wgsl/lib/, copied verbatim into the build.
//
// Loading a shader takes three small text steps. Expanding includes keeps a map from each line it outputs to
// the file and line it came from, and the other two keep every line in place, so that compiler messages
// name the right place:
//   - `//#include lib/x.wgsl` (a line of its own) is replaced by that file's lines, recursively; a file is
//     included once per shader (a later `//#include` of it is dropped), since WGSL forbids declaring a name
//     twice. The included code may use names the including shader declares (WGSL's module-scope
//     declarations work in any order): each lib file says what it needs;
//   - a module-scope `const NAME: T = <default>;` whose NAME is a specialisation constant gets that value
//     instead of its default (the source stays valid WGSL on its own);
//   - `//#if NAME` ... `//#else` ... `//#endif` keeps one branch (NAME a truthy constant) and blanks the
//     other, for choices that change declarations (e.g. a binding's type).
// WGSL `override` constants cannot size function-scope arrays (register tiles), hence this.
//
// The specialised code is then read for the host's side of the contract (shaderInterface): the fields of
// `struct Params` (the kernel's parameters, passed by name and packed by encodeParams), the `@binding`s of
// group 0 by variable name, and the values of module-scope constants (e.g. WG, a workgroup size the host
// needs for its grid).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { HlmError } from '../errors.js';

export type ShaderConstants = Record<string, number | boolean>;

/** Where shaders are read from: the build's copy, or HLM_WGSL_DIR when developing shaders. */
export function shaderDir(): string {
  return process.env.HLM_WGSL_DIR ?? fileURLToPath(new URL('../wgsl/', import.meta.url));
}

/** The path users see in messages for a file under the shader folder: the source file, not the build copy. */
export function shaderDisplayPath(file: string): string {
  return process.env.HLM_WGSL_DIR ? join(process.env.HLM_WGSL_DIR, file) : `src/wgsl/${file}`;
}

/** Shader code with, for each of its lines, the file (as users see it) and line it came from. */
export interface ShaderText {
  name: string;
  code: string;
  origins: { file: string; line: number }[];
}

/** "file:line" of line `line` (1-based) of the code. */
export function origin(text: ShaderText, line: number): string {
  const o = text.origins[line - 1];
  return o ? `${o.file}:${o.line}` : `${shaderDisplayPath(`${text.name}.wgsl`)}:${line}`;
}

/** Shader code from a string (one file, no includes expanded): for tests of the text steps. */
export function shaderText(name: string, code: string): ShaderText {
  const file = shaderDisplayPath(`${name}.wgsl`);
  return { name, code, origins: code.split('\n').map((_, i) => ({ file, line: i + 1 })) };
}

const files = new Map<string, string>();

function readShaderFile(file: string, from?: string): string {
  const path = join(shaderDir(), file);
  let text = files.get(path);
  if (text === undefined) {
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      const what = `shader ${shaderDisplayPath(file)} not found (looked in ${path})`;
      throw new HlmError(from ? `${from}: ${what}` : what);
    }
    files.set(path, text);
  }
  return text;
}

/** src/wgsl/<name>.wgsl with its includes expanded. */
export function loadShader(name: string): ShaderText {
  const code: string[] = [];
  const origins: ShaderText['origins'] = [];
  const seen = new Set<string>();
  const expand = (file: string, from?: string) => {
    seen.add(file);
    const display = shaderDisplayPath(file);
    readShaderFile(file, from)
      .split('\n')
      .forEach((line, i) => {
        const inc = /^\s*\/\/#include\s+(\S+)\s*$/.exec(line);
        if (inc && !seen.has(inc[1])) return expand(inc[1], `${display}:${i + 1}`);
        code.push(inc ? '' : line);
        origins.push({ file: display, line: i + 1 });
      });
  };
  expand(`${name}.wgsl`);
  return { name, code: code.join('\n'), origins };
}

function literal(type: string, value: number | boolean, where: string): string {
  switch (type) {
    case 'u32':
    case 'i32':
      if (!Number.isInteger(value as number))
        throw new HlmError(`${where}: ${type} constant needs an integer, got ${value}`);
      return `${value}${type === 'u32' ? 'u' : 'i'}`;
    case 'f32': {
      const s = String(Number(value));
      return /[.eE]/.test(s) || !Number.isFinite(Number(value)) ? s : `${s}.0`;
    }
    case 'bool':
      return value ? 'true' : 'false';
    default:
      throw new HlmError(`${where}: specialisation constants must be u32, i32, f32 or bool, not ${type}`);
  }
}

/** Apply the specialisation constants to a shader's code (lines stay where they are); every one must be used. */
export function specialise(text: ShaderText, constants: ShaderConstants): ShaderText {
  const used = new Set<string>();
  const out: string[] = [];
  // One entry per open //#if: is its current branch kept?
  const stack: { keep: boolean; line: number }[] = [];
  const active = () => stack.every((s) => s.keep);
  text.code.split('\n').forEach((line, i) => {
    const where = origin(text, i + 1);
    const dir = /^\s*\/\/#(if|else|endif)\b\s*(\w*)/.exec(line);
    if (dir) {
      if (dir[1] === 'if') {
        const key = dir[2];
        if (!(key in constants)) throw new HlmError(`${where}: //#if ${key} needs a constant ${key}`);
        used.add(key);
        stack.push({ keep: Boolean(constants[key]), line: i + 1 });
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
    if (decl && decl[2] in constants) {
      used.add(decl[2]);
      out.push(decl[1] + literal(decl[3], constants[decl[2]], where) + decl[5]);
      return;
    }
    out.push(line);
  });
  if (stack.length) throw new HlmError(`${origin(text, stack[0].line)}: //#if without //#endif`);
  const unused = Object.keys(constants).filter((k) => !used.has(k));
  if (unused.length)
    throw new HlmError(`${shaderDisplayPath(`${text.name}.wgsl`)}: no constant or //#if for ${unused.join(', ')}`);
  return { ...text, code: out.join('\n') };
}

export type ParamType = 'u32' | 'i32' | 'f32';

/** What the host needs to know of a specialised shader: read from its code, used by name. */
export interface ShaderInterface {
  /** The shader's main file, as users see it (messages name it). */
  file: string;
  /** The fields of `struct Params`, in order (each 4 bytes); undefined when the shader has none. */
  params?: { name: string; type: ParamType }[];
  /** The binding of the `var<uniform>` holding Params. */
  uniform?: number;
  /** Storage buffers and textures of group 0 by variable name. */
  bindings: Map<string, { binding: number; writable: boolean; texture?: boolean }>;
  /** Module-scope constants whose value is a literal. */
  constants: Map<string, number | boolean>;
}

function constantValue(text: string): number | boolean | undefined {
  const t = text.trim();
  if (t === 'true' || t === 'false') return t === 'true';
  const m = /^(-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[uif]?$/.exec(t);
  return m ? Number(m[1]) : undefined;
}

/** Read the host's side of the contract from specialised code (comments and blanked lines ignored). */
export function shaderInterface(text: ShaderText): ShaderInterface {
  const file = shaderDisplayPath(`${text.name}.wgsl`);
  const code = text.code.replace(/\/\/[^\n]*/g, '');
  const constants = new Map<string, number | boolean>();
  for (const m of code.matchAll(/^const\s+(\w+)\s*(?::\s*\w+\s*)?=\s*([^;]+);/gm)) {
    const v = constantValue(m[2]);
    if (v !== undefined) constants.set(m[1], v);
  }
  const iface: ShaderInterface = { file, bindings: new Map(), constants };
  const struct = /\bstruct\s+Params\s*\{([^}]*)\}/.exec(code);
  if (struct) {
    iface.params = struct[1]
      .split(',')
      .map((f) => f.trim())
      .filter((f) => f)
      .map((f) => {
        const m = /^(\w+)\s*:\s*(\w+)$/.exec(f);
        if (!m || !['u32', 'i32', 'f32'].includes(m[2]))
          throw new HlmError(`${file}: struct Params field "${f}": parameters are u32, i32 or f32 scalars`);
        return { name: m[1], type: m[2] as ParamType };
      });
  }
  for (const m of code.matchAll(/@group\((\w+)\)\s*@binding\((\w+)\)\s*var(?:<([^>]*)>)?\s*(\w+)\s*:\s*([^;]+);/g)) {
    const [, group, at, space = '', name, type] = m;
    const binding = /^\d+$/.test(at) ? Number(at) : constants.get(at);
    if (group !== '0' || typeof binding !== 'number')
      throw new HlmError(`${file}: binding ${name} must be in group 0 with a literal or constant binding number`);
    if (space.trim() === 'uniform') {
      if (type.trim() !== 'Params') throw new HlmError(`${file}: the uniform ${name} must be of type Params`);
      iface.uniform = binding;
    } else if (!space.trim()) {
      if (!/^texture_storage_2d\s*<\s*rgba32float\s*,\s*read\s*>$/.test(type.trim()))
        throw new HlmError(
          `${file}: binding ${name}: only storage buffers, Params and ` +
            `texture_storage_2d<rgba32float, read> are supported`,
        );
      iface.bindings.set(name, { binding, writable: false, texture: true });
    } else iface.bindings.set(name, { binding, writable: /read_write/.test(space) });
  }
  if (iface.params && iface.uniform === undefined)
    throw new HlmError(`${file}: struct Params is not bound as a var<uniform>`);
  return iface;
}

const LIMITS: Record<'u32' | 'i32', [number, number]> = { u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff] };

/**
 * Pack a kernel's parameters, given by name, into the bytes of its `struct Params`: each field a 4-byte
 * scalar at 4·(its position), the whole padded to 16 bytes. Every field must be given, and nothing else.
 */
export function encodeParams(iface: ShaderInterface, values: Record<string, number>): Uint32Array {
  const fields = iface.params;
  if (!fields) throw new HlmError(`${iface.file}: has no struct Params for parameters ${Object.keys(values)}`);
  const extra = Object.keys(values).filter((k) => !fields.some((f) => f.name === k));
  if (extra.length) throw new HlmError(`${iface.file}: struct Params has no field ${extra.join(', ')}`);
  const words = new Uint32Array(Math.max(4, Math.ceil(fields.length / 4) * 4));
  const view = new DataView(words.buffer);
  fields.forEach(({ name, type }, i) => {
    const v = values[name];
    if (typeof v !== 'number') throw new HlmError(`${iface.file}: parameter ${name} (${type}) is missing`);
    if (type === 'f32') return view.setFloat32(i * 4, v, true);
    const [lo, hi] = LIMITS[type];
    if (!(Number.isInteger(v) && v >= lo && v <= hi))
      throw new HlmError(`${iface.file}: parameter ${name} is ${type}, which cannot hold ${v}`);
    if (type === 'i32') view.setInt32(i * 4, v, true);
    else view.setUint32(i * 4, v, true);
  });
  return words;
}
