// SVG documents read back the way a consumer would: checked as well-formed XML by an XML parser,
// then searched for vega's marks (each drawn mark carries aria-roledescription and an aria-label
// listing its fields, "x: 1; loss: 2.5; objective: ce").
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface Mark {
  element: string;
  label: Record<string, string>;
  fill?: string;
  stroke?: string;
}

/** The parsed document; throws with the parser's message (and line) when the SVG is not well-formed XML. */
export function parseSvg(svg: string): Record<string, unknown> {
  const ok = XMLValidator.validate(svg);
  if (ok !== true) throw new Error(`SVG is not well-formed: ${ok.err.msg} at line ${ok.err.line}`);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_' }).parse(svg) as Record<
    string,
    unknown
  >;
  if (!doc.svg || typeof doc.svg !== 'object') throw new Error('no <svg> root element');
  return doc;
}

/** Every element whose aria-roledescription is `role` (e.g. "line mark", "bar", "errorbar"), in document order. */
export function marks(svg: string, role: string): Mark[] {
  const out: Mark[] = [];
  const visit = (node: unknown, element: string) => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, element);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const attrs = node as Record<string, unknown>;
    if (attrs['@_aria-roledescription'] === role) {
      const label: Record<string, string> = {};
      for (const part of String(attrs['@_aria-label'] ?? '').split('; ')) {
        const at = part.indexOf(': ');
        if (at > 0) label[part.slice(0, at)] = part.slice(at + 2);
      }
      out.push({
        element,
        label,
        fill: attrs['@_fill'] as string | undefined,
        stroke: attrs['@_stroke'] as string | undefined,
      });
    }
    for (const [k, v] of Object.entries(attrs)) if (!k.startsWith('@_')) visit(v, k);
  };
  visit(parseSvg(svg), '');
  return out;
}

/** Series name → the one colour its marks are drawn in; throws if a series has two colours. */
export function seriesColours(list: readonly Mark[], key: string, paint: 'fill' | 'stroke'): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of list) {
    const name = m.label[key];
    const colour = m[paint];
    if (name === undefined || colour === undefined) throw new Error(`mark without "${key}" or ${paint}`);
    if (out.has(name) && out.get(name) !== colour) throw new Error(`series ${name} in ${out.get(name)} and ${colour}`);
    out.set(name, colour);
  }
  return out;
}
