/**
 * Source positions for YAML values. js-yaml has no AST, but its `listener` option reports balanced
 * open/close events for every node with offsets; we rebuild a tree of offsets from them so errors can
 * point at file:line:column for any key path.
 *
 * Things the event stream does not say directly, and how we recover them:
 * - which children of a mapping are keys and which are values: a key without a value (`{a, b: 1}`,
 *   `? a`) has no value node, so pairs are rebuilt by looking for the `:` between two children;
 * - compact pairs inside flow sequences (`[a: 1, b]`) are reported as bare siblings: grouped again;
 * - aliases (`*name`) are nodes without content: linked to the node that carried `&name`, so a path
 *   through an alias points at the anchored text, and merge keys (`<<: *name`) are searched for keys
 *   the mapping does not have itself;
 * - a key with nothing after the colon gets an empty value node that starts at the colon: positions
 *   of such values point at the key, not at whatever comes on the next line.
 */
import yaml from 'js-yaml';

export interface PosNode {
  start: number;
  end: number;
  kind: 'mapping' | 'sequence' | 'scalar' | 'null' | 'alias';
  children: PosNode[];
  result: unknown;
  /** Anchor name declared on this node (`&name`). */
  anchor?: string;
  /** For an alias: its name and the anchored node it refers to. */
  alias?: string;
  target?: PosNode;
  /** Mapping entries rebuilt from children (value absent for a key without one). */
  pairs?: Array<{ key: PosNode; value?: PosNode }>;
  /** Pairs by key text, first one wins (built on first lookup: one scan per mapping, not per key). */
  byKey?: Map<string, { key: PosNode; value?: PosNode }>;
  /** Values of the mapping's merge keys (`<<: *name`), in order. */
  merges?: PosNode[];
  /** Sequence items (compact flow pairs regrouped). */
  items?: PosNode[];
}

export interface Located {
  line: number; // 1-based
  column: number; // 1-based
  offset: number;
  /** False when the path does not exist (the location is then its nearest existing owner). */
  found?: boolean;
  /** Set when the location is inside an anchor reached through an alias or merge key. */
  via?: { alias: string; line: number; column: number };
}

/** A YAML syntax error with the position (0-based line/column like js-yaml's mark) and a reason for people. */
export class YamlSyntaxError extends Error {
  constructor(readonly reason: string, readonly line: number, readonly column: number) {
    super(`${reason} (${line + 1}:${column + 1})`);
    this.name = 'YamlSyntaxError';
  }
}

const isBlankText = (s: string) => /^(\s|#[^\n]*)*$/.test(s);

/** Text between two offsets with comments removed (a "#" after whitespace starts a comment). */
function stripComments(s: string): string {
  return s.replace(/(^|\s)#[^\n]*/g, '$1');
}

export class SourceMap {
  private readonly lineStarts: number[] = [0];
  constructor(readonly text: string, readonly root: PosNode | undefined) {
    // Line breaks as YAML (and editors) count them: LF, CRLF, and a lone CR.
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) this.lineStarts.push(i + 1);
    }
  }

  locate(offset: number): Located {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.lineStarts[lo]! + 1, offset };
  }

  /** Skip whitespace, comments, a value's ":" or "," and node properties so the offset lands on the token. */
  skipToToken(offset: number): number {
    const t = this.text;
    let i = offset;
    for (;;) {
      while (i < t.length && (t[i] === ' ' || t[i] === '\t' || t[i] === '\n' || t[i] === '\r')) i++;
      if (t[i] === '#') {
        while (i < t.length && t[i] !== '\n') i++;
        continue;
      }
      if ((t[i] === ':' || t[i] === '?') && (i + 1 >= t.length || /\s/.test(t[i + 1]!))) { i++; continue; }
      if (t[i] === ',') { i++; continue; }
      // Anchor or tag in front of the content: `&name value`, `!!str 80`.
      if ((t[i] === '&' || t[i] === '!') && /\S/.test(t[i + 1] ?? '')) {
        let j = i + 1;
        while (j < t.length && !/\s/.test(t[j]!)) j++;
        if (j < t.length) { i = j; continue; }
      }
      break;
    }
    return Math.min(i, t.length);
  }

  /**
   * First token of a node. An empty node (`? ` with no key, a key with no value at the end of the
   * file) has no token of its own: stay at the last character before it instead of running on into
   * whatever follows.
   */
  tokenOf(n: PosNode): number {
    const i = this.skipToToken(n.start);
    if (n.kind === 'mapping' || n.kind === 'sequence' || !isBlankText(this.text.slice(n.start, n.end))) return i;
    // Empty: point at what introduced it on its line ("?", ":" or "-").
    let j = n.start - 1;
    while (j > 0 && (this.text[j] === ' ' || this.text[j] === '\t')) j--;
    return j >= 0 && this.text[j] !== '\n' && this.text[j] !== '\r' ? j : Math.min(i, n.start);
  }

  private deref(n: PosNode, via: { v?: Located['via'] }): PosNode {
    for (let i = 0; i < 32 && n.kind === 'alias' && n.target; i++) {
      if (!via.v) {
        const at = this.locate(this.skipToToken(n.start));
        via.v = { alias: n.alias ?? '', line: at.line, column: at.column };
      }
      n = n.target;
    }
    return n;
  }

  /** Key lookup in a mapping, then in what its merge keys (`<<`) bring in, first source first. */
  private lookup(m: PosNode, key: string, via: { v?: Located['via'] }, depth = 0): { key: PosNode; value?: PosNode } | undefined {
    if (!m.byKey || !m.merges) {
      m.byKey = new Map();
      m.merges = [];
      for (const p of m.pairs ?? []) {
        const k = String(p.key.result);
        if (p.key.result === '<<') { if (p.value) m.merges.push(p.value); }
        else if (!m.byKey.has(k)) m.byKey.set(k, p);
      }
    }
    const own = m.byKey.get(key);
    if (own) return own;
    if (depth > 8) return undefined;
    for (const mv of m.merges) {
      const local: { v?: Located['via'] } = {};
      const src = this.deref(mv, local);
      const sources = src.kind === 'sequence' ? (src.items ?? []).map((x) => this.deref(x, local)) : [src];
      for (const s of sources) {
        if (s.kind !== 'mapping') continue;
        const hit = this.lookup(s, key, local, depth + 1);
        if (hit) {
          if (!via.v) via.v = local.v;
          return hit;
        }
      }
    }
    return undefined;
  }

  /**
   * Where a key path is in the source. `key: true` points at the mapping key instead of its value.
   * If the path does not exist (a missing key), the location of the mapping that lacks it is
   * returned: the key that owns that mapping, or the mapping's first token for a list item.
   */
  find(path: ReadonlyArray<string | number>, opts: { key?: boolean } = {}): Located {
    let node = this.root;
    if (!node) return { ...this.locate(0), found: path.length === 0 };
    const via: { v?: Located['via'] } = {};
    let keyNode: PosNode | undefined;
    let owner: PosNode | undefined; // key whose value is `node`, if any
    const withVia = (l: Located): Located => (via.v ? { ...l, via: via.v } : l);
    for (const seg of path) {
      node = this.deref(node, via);
      let next: PosNode | undefined;
      keyNode = undefined;
      if (node.kind === 'mapping') {
        const hit = this.lookup(node, String(seg), via);
        if (hit) { keyNode = hit.key; next = hit.value ?? hit.key; }
      } else if (node.kind === 'sequence' && typeof seg === 'number') {
        next = node.items?.[seg];
      }
      if (!next) {
        const at = owner ?? node;
        return withVia({ ...this.locate(this.tokenOf(at)), found: false });
      }
      owner = keyNode;
      node = next;
    }
    if (keyNode && (opts.key || (node.kind === 'null' && isBlankText(this.text.slice(node.start, node.end))))) {
      return withVia({ ...this.locate(this.tokenOf(keyNode)), found: true });
    }
    node = this.deref(node, via);
    return withVia({ ...this.locate(this.tokenOf(node)), found: true });
  }
}

/**
 * js-yaml reports no node for an empty block list item ("-" alone on its line) but still puts a null
 * in the list, so children and indices drift apart. When the counts differ, match children to the
 * "-" indicators of the list (at the column of its first one) and fill the gaps with empty nodes.
 */
function alignBlockItems(n: PosNode, text: string, map: SourceMap): PosNode[] {
  const len = Array.isArray(n.result) ? n.result.length : n.children.length;
  if (len === n.children.length) return n.children;
  const first = map.skipToToken(n.start);
  if (text[first] !== '-') return n.children;
  const col = first - (text.lastIndexOf('\n', first - 1) + 1);
  const dashes: number[] = [first];
  const re = /^([ \t]*)-(?=[ \t\r\n]|$)/gm;
  re.lastIndex = first + 1;
  for (let m = re.exec(text); m && m.index < n.end; m = re.exec(text)) if (m[1]!.length === col) dashes.push(m.index + col);
  const items: PosNode[] = [];
  let c = 0;
  for (let d = 0; d < dashes.length; d++) {
    const next = dashes[d + 1] ?? n.end;
    const child = n.children[c];
    if (child && map.skipToToken(child.start) < next && child.start >= dashes[d]!) { items.push(child); c++; }
    else items.push({ start: dashes[d]! + 1, end: dashes[d]! + 1, kind: 'null', children: [], result: null });
  }
  return items.length === len ? items : n.children;
}

/** Rebuild mapping pairs and sequence items once the tree is complete. */
function normalize(n: PosNode, text: string, map: SourceMap): void {
  // js-yaml opens a node for a list item and, inside it, another one for the same content (it first
  // tries to read it as a mapping key): fold such wrappers into one node.
  for (let c = n.children[0]; n.children.length === 1 && c && c.end === n.end && c.kind === n.kind && map.skipToToken(c.start) === map.skipToToken(n.start); c = n.children[0]) {
    n.children = c.children;
    n.result = c.result;
    if (c.alias !== undefined) { n.alias = c.alias; n.target = c.target; }
    if (!n.anchor && c.anchor) n.anchor = c.anchor;
  }
  for (const c of n.children) normalize(c, text, map);
  const colonBetween = (a: PosNode, b: PosNode) => stripComments(text.slice(a.end, b.start)).includes(':');
  if (n.kind === 'mapping') {
    const pairs: NonNullable<PosNode['pairs']> = [];
    const ch = n.children;
    for (let i = 0; i < ch.length; ) {
      const k = ch[i]!;
      const v = ch[i + 1];
      // The value node of `key:` begins at or after the colon; a key without a value is followed by
      // "," or a newline and the next key instead.
      if (v && colonBetween(k, v)) {
        pairs.push({ key: k, value: v });
        i += 2;
      } else {
        pairs.push({ key: k });
        i += 1;
      }
    }
    n.pairs = pairs;
  } else if (n.kind === 'sequence') {
    const flow = text.slice(n.start).trimStart().startsWith('[');
    if (!flow) { n.items = alignBlockItems(n, text, map); return; }
    const items: PosNode[] = [];
    const ch = n.children;
    for (let i = 0; i < ch.length; ) {
      const a = ch[i]!;
      const b = ch[i + 1];
      if (b && colonBetween(a, b)) {
        items.push({ start: a.start, end: b.end, kind: 'mapping', children: [a, b], result: undefined, pairs: [{ key: a, value: b }] });
        i += 2;
      } else {
        items.push(a);
        i += 1;
      }
    }
    n.items = items;
  }
}

/** Offset of the last quote before `upTo` that opens a value and is not closed on its line. */
function findUnclosedQuote(text: string, upTo: number): number | undefined {
  let found: number | undefined;
  const re = /(?:^[ \t]*(?:-[ \t]+)?|:[ \t]+|-[ \t]+)(["'])/gm;
  for (let m = re.exec(text); m && m.index < upTo; m = re.exec(text)) {
    const q = m.index + m[0].length - 1;
    const eol = text.indexOf('\n', q);
    const rest = text.slice(q, eol < 0 ? text.length : eol);
    const closed = m[1] === '"' ? /^"(?:[^"\\]|\\.)*"/.test(rest) : /^'(?:[^']|'')*'/.test(rest);
    if (!closed && q < upTo) found = q;
  }
  return found;
}

/** Offset of a "-" that starts a line's content and is glued to a key ("-name: x"), up to the error. */
function findDashWithoutSpace(text: string, upTo: number): number | undefined {
  const re = /^([ \t]*)-[A-Za-z_][\w-]*:/gm;
  let found: number | undefined;
  for (let m = re.exec(text); m && m.index <= upTo; m = re.exec(text)) found = m.index + m[1]!.length;
  return found;
}

/** Human wording for js-yaml's reasons, with the extra context the partial tree gives us. */
function explain(e: yaml.YAMLException, text: string, stack: PosNode[], map: SourceMap): YamlSyntaxError {
  let line = e.mark?.line ?? 0;
  let column = e.mark?.column ?? 0;
  let reason = e.reason ?? String(e.message);
  const pos0 = e.mark?.position ?? 0;
  // A list item written "-name: x" (no space after the dash) is read as a key "-name" and breaks
  // the lines after it: report the dash, which is what needs fixing.
  const dash = /bad indentation|unexpected text|end of the stream|can not read/.test(reason) ? findDashWithoutSpace(text, pos0) : undefined;
  if (dash !== undefined) {
    const at = map.locate(dash);
    reason = 'a list item needs a space after "-" (write "- key: value")';
    line = at.line - 1;
    column = at.column - 1;
  } else if (/expected a single document in the stream/.test(reason)) {
    const second = [...text.matchAll(/^---[ \t]*\r?$/gm)].map((x) => x.index!).find((i) => /\S/.test(text.slice(0, i).replace(/#[^\n]*/g, '')));
    if (second !== undefined) {
      const at = map.locate(second);
      reason = 'the file holds more than one YAML document ("---"); lvsd reads exactly one: remove this separator or split the file';
      line = at.line - 1;
      column = at.column - 1;
    }
  } else if (/expected valid JSON character|non-printable characters/.test(reason)) {
    // Lone surrogates cannot come from a UTF-8 file (decoding replaces them) but can from text given directly.
    const bad = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.exec(text);
    if (bad) {
      const at = map.locate(bad.index);
      const code = bad[0].charCodeAt(0);
      const hex = code.toString(16).toUpperCase().padStart(4, '0');
      reason = code >= 0xd800 && code <= 0xdfff ? `the text contains an unpaired surrogate (U+${hex}), which is not a character; remove it` : `the file contains a control character (U+${hex}); remove it`;
      line = at.line - 1;
      column = at.column - 1;
    }
  } else if (/end of the stream within a (double|single) quoted scalar/.test(reason)) {
    // Point at the quote that opened the string rather than at the end of the file.
    const open = stack[stack.length - 1];
    const at = open ? map.locate(map.skipToToken(open.start)) : undefined;
    const q = at ? text[at.offset] : undefined;
    if (at && (q === '"' || q === "'")) {
      reason = `the ${q} that starts this string is never closed`;
      line = at.line - 1;
      column = at.column - 1;
    }
  } else if ((e.mark?.position ?? 0) >= text.length && text.trim() !== '') {
    // Errors at the end of the stream: report them on the last line that has something on it.
    const end = text.trimEnd().length;
    const at = map.locate(end);
    line = at.line - 1;
    column = at.column - 1;
  }
  if (reason === 'duplicated mapping key') {
    const pos = e.mark?.position ?? 0;
    const m = /^(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^:#\n]*?))\s*:/.exec(text.slice(pos));
    const key = m ? (m[1] ?? m[2] ?? m[3] ?? '').trim() : '';
    let first: Located | undefined;
    for (let i = stack.length - 1; i >= 0 && !first; i--) {
      const s = stack[i]!;
      const hit = s.children.find((c) => c.kind === 'scalar' && String(c.result) === key && c.start < pos);
      if (hit) first = map.locate(map.skipToToken(hit.start));
    }
    // When deeper-indented lines sit between the two, the second one was probably meant for the
    // nested entry above it (a real server's port written at the virtual server's indentation).
    let nested = false;
    if (first && first.line < line + 1) {
      const lines = text.split(/\r\n|\r|\n/).slice(first.line, line);
      nested = lines.some((l) => l.trim() !== '' && !l.trimStart().startsWith('#') && l.length - l.trimStart().length > column);
    }
    reason = `duplicate key "${key}"${first ? ` (first set at line ${first.line})` : ''}: a mapping cannot repeat a key${nested ? '; if it belongs to the nested entry above, indent it to match that entry\'s keys' : ''}`;
  } else if (/tab characters must not be used/.test(reason)) {
    reason = 'a tab character is used for indentation; YAML allows only spaces';
  } else if (/end of the stream within a flow collection/.test(reason)) {
    // Point at the bracket that was never closed: the outermost flow collection still open.
    const open = stack.find((s) => /^[[{]/.test(text.slice(map.skipToToken(s.start))));
    if (open) {
      const at = map.locate(map.skipToToken(open.start));
      const ch = text[at.offset];
      reason = `"${ch}" is never closed (missing "${ch === '[' ? ']' : '}'}"); the file ended inside it`;
      line = at.line - 1;
      column = at.column - 1;
    }
  } else if (/missed comma between flow collection entries/.test(reason)) {
    // When the open "[" or "{" began on an earlier line, the usual cause is a missing closing
    // bracket (the next key was read as another entry): point at the bracket.
    const open = [...stack].reverse().find((s) => /^[[{]/.test(text.slice(map.skipToToken(s.start))));
    const at = open ? map.locate(map.skipToToken(open.start)) : undefined;
    if (open && at && at.line - 1 < line) {
      const ch = text[at.offset];
      reason = `"${ch}" is not closed before line ${line + 1} (missing "${ch === '[' ? ']' : '}'}"?)`;
      line = at.line - 1;
      column = at.column - 1;
    } else {
      reason = 'missing "," between entries of a [...] or {...} list';
    }
  } else if (/can not read a block mapping entry; a multiline key may not be an implicit key/.test(reason)) {
    // js-yaml reports this at the line after a line without "key: value" (e.g. keepalived's
    // `priority 100`), or after a quoted string that never ends: point at the line to fix.
    const lineStart = (e.mark?.position ?? 0) - column;
    let prev: { start: number; text: string } | undefined;
    for (let j = lineStart - 1; j > 0 && !prev; ) {
      const ls = text.lastIndexOf('\n', j - 1) + 1;
      const l = text.slice(ls, j).replace(/\r$/, '');
      if (!isBlankText(l)) prev = { start: ls, text: l };
      j = ls - 1;
    }
    const quote = findUnclosedQuote(text, lineStart);
    if (quote !== undefined) {
      const at = map.locate(quote);
      reason = `the ${text[quote]} that starts this string is never closed`;
      line = at.line - 1;
      column = at.column - 1;
    } else if (prev && !/:(\s|$)/.test(prev.text.replace(/\s#.*$/, ''))) {
      const at = map.locate(prev.start + (prev.text.length - prev.text.trimStart().length));
      line = at.line - 1;
      column = at.column - 1;
      reason = `expected "key: value" but this line has no ":" followed by a space (got ${JSON.stringify(prev.text.trim().slice(0, 40))})`;
    }
  } else if (/bad indentation of a mapping entry|bad indentation of a sequence entry/.test(reason)) {
    const pos = e.mark?.position ?? 0;
    const before = text.slice(pos - column, pos);
    if (before.trim() !== '') {
      // Not an indentation problem: something follows a complete value on the same line, e.g.
      // `listen: [::1]:9650`, where "[::1]" was read as a list.
      const eol = text.indexOf('\n', pos);
      const value = /:\s+(.*)$/.exec(text.slice(pos - column, eol < 0 ? text.length : eol).replace(/\r$/, ''))?.[1]?.trim();
      const flow = /[\]}]$/.test(before.trimEnd());
      reason = `unexpected text after the value on this line${flow && value ? `; a value that starts with "[" or "{" is read as a list or mapping: quote it, e.g. "${value.replace(/"/g, '\\"')}"` : ''}`;
    } else {
      reason = `${reason}: this line's indentation does not match its siblings`;
    }
  }
  return new YamlSyntaxError(reason, line, column);
}

// js-yaml exports its built-in types at runtime (`types.merge`), but @types/js-yaml does not declare them.
const mergeType = (yaml as unknown as { types: { merge: yaml.Type } }).types.merge;
const schema = yaml.CORE_SCHEMA.extend({ implicit: [mergeType] });

/** Parse YAML text; throws YamlSyntaxError (0-based line/column) on syntax errors. */
export function parseWithPositions(text: string, filename: string): { value: unknown; map: SourceMap } {
  // js-yaml drops a leading byte order mark, which would shift every offset by one: drop it first.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const bom = text.indexOf('\ufeff');
  if (bom >= 0) {
    // Usually two files joined with cat: js-yaml would take the mark as text.
    const at = new SourceMap(text, undefined).locate(bom);
    throw new YamlSyntaxError('a byte order mark (U+FEFF) in the middle of the file (were two files joined?); remove it', at.line - 1, at.column - 1);
  }
  const stack: PosNode[] = [];
  const anchors = new Map<string, PosNode>();
  let root: PosNode | undefined;
  let value: unknown;
  try {
    value = yaml.load(text, {
      filename,
      schema, // core schema (no timestamps or binary: config values stay plain) plus merge keys
      json: false,
      listener(event, state) {
        if (event === 'open') {
          stack.push({ start: state.position, end: state.position, kind: 'null', children: [], result: undefined });
          return;
        }
        const n = stack.pop();
        if (!n) return;
        n.end = state.position;
        n.result = state.result;
        n.kind = state.kind === 'mapping' || state.kind === 'sequence' || state.kind === 'scalar' ? state.kind : 'null';
        if (n.kind === 'null') {
          const m = /^\s*\*([^\s,\]}]+)/.exec(text.slice(n.start, n.end));
          if (m) { n.kind = 'alias'; n.alias = m[1]!; n.target = anchors.get(m[1]!); }
        }
        const anchor = (state as unknown as { anchor: string | null }).anchor;
        if (anchor) { n.anchor = anchor; anchors.set(anchor, n); }
        const parent = stack[stack.length - 1];
        if (parent) parent.children.push(n);
        else if (!root) root = n; // later documents are rejected by yaml.load
      },
    });
  } catch (e) {
    if (e instanceof yaml.YAMLException) {
      const partial = new SourceMap(text, undefined);
      throw explain(e, text, stack, partial);
    }
    throw e;
  }
  const map = new SourceMap(text, root);
  if (root) normalize(root, text, map);
  return { value, map };
}
