/**
 * What the mapper records besides the lvsd model: the keepalived settings lvsd lacks (each with its
 * file:line, shown as a YAML comment at the place it would have gone) and notes on settings converted
 * with a difference worth knowing. Also the value readers shared by the mappers.
 */
import type { KNode, Word } from './parse.js';

export type ItemKind = 'unsupported' | 'note';

export interface Item {
  readonly kind: ItemKind;
  readonly file: string;
  readonly line: number;
  /** The keepalived statement, e.g. "smtp_alert" or "vrrp_instance VI_1 > use_vmac". */
  readonly what: string;
  readonly message: string;
}

/** An lvsd object (mapping or list) a comment is attached to; emitted before it. */
export type Anchor = object;

export class MapContext {
  readonly items: Item[] = [];
  /** Comments written before an object of the output (by identity). */
  readonly comments = new WeakMap<Anchor, string[]>();
  /** Comments written before a key of a mapping (object → key → lines). */
  readonly keyComments = new WeakMap<Anchor, Map<string, string[]>>();
  /** Items without a place in the output: written at the top. */
  readonly header: string[] = [];

  constructor(readonly display: (file: string) => string) {}

  private record(kind: ItemKind, node: Origin, what: string, message: string, at?: Anchor, key?: string): void {
    const item: Item = { kind, file: node.file, line: node.line, what, message };
    this.items.push(item);
    const text = `${kind === 'unsupported' ? 'NOT CONVERTED' : 'NOTE'} ${this.display(item.file)}:${item.line}: ${what}: ${message}`;
    if (!at) { this.header.push(text); return; }
    if (key !== undefined) {
      let m = this.keyComments.get(at);
      if (!m) this.keyComments.set(at, (m = new Map()));
      m.set(key, [...(m.get(key) ?? []), text]);
      return;
    }
    this.comments.set(at, [...(this.comments.get(at) ?? []), text]);
  }

  /** A keepalived setting lvsd has no equivalent for (makes the conversion partial). */
  unsupported(node: Origin, what: string, message: string, at?: Anchor, key?: string): void {
    this.record('unsupported', node, what, message, at, key);
  }

  /** Converted, with a remark (does not make the conversion partial). */
  note(node: Origin, what: string, message: string, at?: Anchor, key?: string): void {
    this.record('note', node, what, message, at, key);
  }

  /** A comment before an output object that is no item (e.g. where a copy came from). */
  remark(at: Anchor, text: string): void {
    this.comments.set(at, [...(this.comments.get(at) ?? []), text]);
  }

  /** The usual "no lvsd equivalent" item for a statement. */
  unknown(node: KNode, scope: string, at?: Anchor, key?: string): void {
    this.unsupported(node, statement(node, scope), 'no lvsd equivalent; left out', at, key);
  }
}

export interface Origin {
  readonly file: string;
  readonly line: number;
}

/** "vrrp_instance VI_1 > use_vmac vrrp1" — a statement as an operator recognises it. */
export function statement(node: KNode, scope?: string): string {
  const head = [node.keyword, ...node.args.map((a) => (/\s/.test(a.text) || a.text === '' ? JSON.stringify(a.text) : a.text))].join(' ');
  const short = head.length > 70 ? head.slice(0, 67) + '...' : head;
  return scope ? `${scope} > ${short}` : short;
}

export interface NumOpts {
  readonly int?: boolean;
  readonly min?: number;
  readonly max?: number;
}

/** A number argument, or undefined (with an item) when it is missing or out of range. */
export function readNumber(ctx: MapContext, node: KNode, scope: string, w: Word | undefined, o: NumOpts = {}, at?: Anchor): number | undefined {
  const bad = (why: string) => {
    ctx.unsupported(node, statement(node, scope), `${why}; left out`, at);
    return undefined;
  };
  if (!w) return bad('value missing');
  const re = o.int ? /^[+-]?\d+$/ : /^[+-]?(\d+(\.\d*)?|\.\d+)$/;
  if (!re.test(w.text)) return bad(`"${w.text}" is not ${o.int ? 'a whole number' : 'a number'}`);
  const n = Number(w.text);
  if (o.min !== undefined && n < o.min) return bad(`${n} is below ${o.min}`);
  if (o.max !== undefined && n > o.max) return bad(`${n} is above ${o.max}`);
  return n;
}

/** keepalived's <BOOL>: absent = true; on|off|true|false|yes|no. */
export function readBool(w: Word | undefined): boolean | undefined {
  if (!w) return true;
  const t = w.text.toLowerCase();
  if (['on', 'true', 'yes'].includes(t)) return true;
  if (['off', 'false', 'no'].includes(t)) return false;
  return undefined;
}

/**
 * A script as keepalived runs it: the words given, each split again on unquoted white space with
 * single or double quotes keeping a parameter together (keepalived.conf(5), "Quoted strings").
 * One string when no argument holds a space (lvsd splits it on spaces), else the argument list.
 */
export function readCommand(words: readonly Word[]): string | string[] {
  const argv: string[] = [];
  for (const w of words) argv.push(...splitScript(w.text));
  return argv.some((a) => /\s/.test(a) || a === '') ? argv : argv.join(' ');
}

export function splitScript(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === q) q = undefined;
      else cur += c;
    } else if (c === "'" || c === '"') { q = c; has = true; }
    else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else { cur += c; has = true; }
  }
  if (has || cur) out.push(cur);
  return out;
}
