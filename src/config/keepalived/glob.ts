/**
 * The include patterns of keepalived.conf: glob(3) with GLOB_BRACE, as keepalived passes them to libc
 * (`*`, `?`, `[...]`, and csh braces `{a,b}`, nested). Matches are sorted per pattern like glob(3);
 * `*` and `?` do not match a leading dot; a pattern without wildcards names the file itself.
 * Pure apart from the injected directory listing.
 */
import { posix } from 'node:path';

/** The directory entries of a path (names only), or undefined when it is not a readable directory. */
export type ListDir = (dir: string) => readonly string[] | undefined;
/** Whether a path exists (any type). */
export type Exists = (path: string) => boolean;

/** csh brace expansion: "a{b,c{d,e}}f" → abf, acdf, acef. Unbalanced braces are left as they are. */
export function expandBraces(pattern: string): string[] {
  let depth = 0;
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\') { i++; continue; }
    if (ch === '{') { if (depth++ === 0) open = i; }
    else if (ch === '}' && depth > 0 && --depth === 0) {
      const head = pattern.slice(0, open);
      const tail = pattern.slice(i + 1);
      const body = pattern.slice(open + 1, i);
      const alts: string[] = [];
      let d = 0;
      let start = 0;
      for (let j = 0; j < body.length; j++) {
        const c = body[j];
        if (c === '\\') { j++; continue; }
        if (c === '{') d++;
        else if (c === '}') d--;
        else if (c === ',' && d === 0) { alts.push(body.slice(start, j)); start = j + 1; }
      }
      alts.push(body.slice(start));
      // glob(3) keeps "{}" and a single alternative without a comma literally.
      if (alts.length === 1) return expandBraces(head + '\u0000' + body + '\u0001' + tail).map((s) => s.replace('\u0000', '{').replace('\u0001', '}'));
      return alts.flatMap((a) => expandBraces(head + a + tail));
    }
  }
  return [pattern];
}

const hasMagic = (s: string) => /[*?[]/.test(s);

/** One path segment's pattern as a regular expression. */
export function segmentRegex(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const ch = seg[i]!;
    if (ch === '\\' && i + 1 < seg.length) re += escapeRe(seg[++i]!);
    else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const close = seg.indexOf(']', i + 2);
      if (close < 0) { re += '\\['; continue; }
      let cls = seg.slice(i + 1, close);
      if (cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += '[' + cls.replace(/\\/g, '\\\\') + ']';
      i = close;
    } else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? '\\' + ch : ch;
}

/** Absolute paths matching an absolute pattern, sorted per brace alternative (glob(3) order). */
export function glob(pattern: string, list: ListDir, exists: Exists): string[] {
  const out: string[] = [];
  for (const p of expandBraces(pattern)) {
    const found: string[] = [];
    walk('/', p.split('/').filter((s) => s !== ''), list, exists, found);
    found.sort();
    for (const f of found) if (!out.includes(f)) out.push(f);
  }
  return out;
}

function walk(dir: string, segs: string[], list: ListDir, exists: Exists, found: string[]): void {
  if (segs.length === 0) {
    found.push(dir);
    return;
  }
  const [seg, ...rest] = segs as [string, ...string[]];
  if (!hasMagic(seg)) {
    const p = posix.join(dir, seg.replace(/\\(.)/g, '$1'));
    if (rest.length === 0 ? exists(p) : list(p) !== undefined) walk(p, rest, list, exists, found);
    return;
  }
  const re = segmentRegex(seg);
  for (const name of list(dir) ?? []) {
    if (name.startsWith('.') && !seg.startsWith('.')) continue;
    if (!re.test(name)) continue;
    const p = posix.join(dir, name);
    if (rest.length === 0 || list(p) !== undefined) walk(p, rest, list, exists, found);
  }
}
