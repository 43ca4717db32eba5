/**
 * The converted model as YAML with the mapper's comments at their place. Scalars and short lists are
 * written by js-yaml (its quoting rules); the block structure is written here because js-yaml has no
 * comments.
 */
import yaml from 'js-yaml';
import type { MapContext } from './context.js';

type Value = unknown;

const scalar = (v: Value) => yaml.dump(v, { lineWidth: -1, flowLevel: 0 }).trimEnd();
const isObj = (v: Value): v is Record<string, Value> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalarList = (v: Value) => Array.isArray(v) && v.every((x) => !isObj(x) && !Array.isArray(x));

export function emitYaml(root: Record<string, Value>, ctx: MapContext, header: readonly string[]): string {
  const lines: string[] = header.map((h) => (h ? `# ${h}` : '#'));
  if (lines.length) lines.push('');
  const top = emitMap(root, 0, ctx);
  // A blank line between top-level sections, for reading.
  for (const l of top) {
    if (/^[a-z_]/.test(l) && lines.length && lines.at(-1) !== '' && !lines.at(-1)!.startsWith('#')) lines.push('');
    lines.push(l);
  }
  return lines.join('\n') + '\n';
}

function comments(list: readonly string[] | undefined, indent: number): string[] {
  return (list ?? []).map((c) => `${' '.repeat(indent)}# ${c}`);
}

function emitMap(obj: Record<string, Value>, indent: number, ctx: MapContext): string[] {
  const pad = ' '.repeat(indent);
  const out: string[] = [];
  const keyed = ctx.keyComments.get(obj);
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    out.push(...comments(keyed?.get(k), indent));
    if (isObj(v) || Array.isArray(v)) out.push(...comments(ctx.comments.get(v), indent));
    if (isObj(v)) {
      if (Object.keys(v).length === 0) out.push(`${pad}${k}: {}`);
      else out.push(`${pad}${k}:`, ...emitMap(v, indent + 2, ctx));
    } else if (Array.isArray(v)) {
      if (isScalarList(v)) out.push(`${pad}${k}: ${scalar(v)}`);
      else out.push(`${pad}${k}:`, ...emitList(v, indent + 2, ctx));
    } else out.push(`${pad}${k}: ${scalar(v)}`);
  }
  // Remarks about keys that were left out have no line of their own: they go after the mapping's keys.
  for (const [k, list] of keyed ?? []) if (!(k in obj)) out.push(...comments(list, indent));
  return out;
}

function emitList(list: readonly Value[], indent: number, ctx: MapContext): string[] {
  const pad = ' '.repeat(indent);
  const out: string[] = [];
  for (const item of list) {
    if (isObj(item)) {
      out.push(...comments(ctx.comments.get(item), indent));
      const body = emitMap(item, indent + 2, ctx);
      const first = body.findIndex((l) => !l.trimStart().startsWith('#'));
      if (first < 0) out.push(`${pad}- {}`, ...body);
      // Comments on the first key go before the dash, at the dash's indentation.
      else out.push(...body.slice(0, first).map((l) => pad + l.trimStart()), `${pad}- ${body[first]!.slice(indent + 2)}`, ...body.slice(first + 1));
    } else if (Array.isArray(item)) out.push(`${pad}- ${scalar(item)}`);
    else out.push(`${pad}- ${scalar(item)}`);
  }
  return out;
}
