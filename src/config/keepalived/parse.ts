/**
 * keepalived.conf's block syntax into a tree with positions. A statement is a keyword and its
 * words up to the end of the line, a `{` (which opens its block) or a `}`; a `{` alone on a line
 * opens the block of the statement before it. Words are shell-like: `"..."` and `'...'` keep white
 * space and may join unquoted text ("a"b → ab), with the escapes keepalived.conf(5) lists; `#` and
 * `!` outside quotes start a comment. Pure: lines in (see source.ts), tree out.
 */
import { KeepalivedError, type Origin, type SourceLine } from './source.js';

export interface Word extends Origin {
  readonly text: string;
  /** 1-based column of the word's first character. */
  readonly column: number;
  /** Part of the word was quoted (a quoted "{" is a word, not a block). */
  readonly quoted: boolean;
}

export interface KNode extends Origin {
  readonly keyword: string;
  readonly column: number;
  readonly args: readonly Word[];
  /** Present when the statement opened a block (possibly empty). */
  readonly children?: KNode[];
}

type Token = Word | { brace: '{' | '}'; file: string; line: number; column: number };
const isBrace = (t: Token): t is { brace: '{' | '}'; file: string; line: number; column: number } => 'brace' in t;

const ESCAPES: Record<string, string> = { a: '\x07', b: '\b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** The words and braces of one line. */
export function tokenize(l: SourceLine): Token[] {
  const out: Token[] = [];
  const s = l.text;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\v' || c === '\f') { i++; continue; }
    if (c === '#' || c === '!') break;
    if (c === '{' || c === '}') { out.push({ brace: c, file: l.file, line: l.line, column: i + 1 }); i++; continue; }
    const start = i;
    let text = '';
    let quoted = false;
    while (i < s.length) {
      const ch = s[i]!;
      if (ch === '"' || ch === "'") {
        quoted = true;
        const q = ch;
        i++;
        let closed = false;
        while (i < s.length) {
          const d = s[i]!;
          if (d === q) { closed = true; i++; break; }
          if (d === '\\' && i + 1 < s.length) {
            const [str, used] = escape(s, i + 1);
            text += str;
            i += 1 + used;
            continue;
          }
          text += d;
          i++;
        }
        if (!closed) throw new KeepalivedError('KEEPALIVED_SYNTAX', l.file, l.line, start + 1, `unterminated ${q === '"' ? 'double' : 'single'} quote`);
        continue;
      }
      if (ch === ' ' || ch === '\t' || ch === '{' || ch === '}' || ch === '#' || ch === '!') break;
      if (ch === '\\' && i + 1 < s.length) { text += s[i + 1]; i += 2; continue; }
      text += ch;
      i++;
    }
    out.push({ text, quoted, file: l.file, line: l.line, column: start + 1 });
  }
  return out;
}

/** One escape after a backslash inside quotes: [text, characters used]. */
function escape(s: string, at: number): [string, number] {
  const c = s[at]!;
  if (ESCAPES[c] !== undefined) return [ESCAPES[c]!, 1];
  const oct = /^[0-7]{1,3}/.exec(s.slice(at));
  if (oct) return [String.fromCharCode(parseInt(oct[0], 8) & 0xff), oct[0].length];
  const hex = /^x([0-9A-Fa-f]+)/.exec(s.slice(at));
  if (hex) return [String.fromCharCode(parseInt(hex[1]!.slice(-2), 16)), hex[0].length];
  if (c === 'c' && at + 1 < s.length) return [String.fromCharCode(s.charCodeAt(at + 1) & 0x1f), 2];
  return [c, 1];
}

/** The statement tree of the lines. Throws KeepalivedError (KEEPALIVED_SYNTAX) with file:line:column. */
export function parseTree(lines: readonly SourceLine[]): KNode[] {
  const root: KNode[] = [];
  const stack: { children: KNode[]; opener?: KNode }[] = [{ children: root }];
  const top = () => stack[stack.length - 1]!;
  for (const l of lines) {
    let words: Word[] = [];
    const flush = (open: boolean) => {
      if (words.length === 0) return undefined;
      const [k, ...args] = words as [Word, ...Word[]];
      const node: KNode = open
        ? { keyword: k.text, file: k.file, line: k.line, column: k.column, args, children: [] }
        : { keyword: k.text, file: k.file, line: k.line, column: k.column, args };
      top().children.push(node);
      words = [];
      return node;
    };
    for (const t of tokenize(l)) {
      if (!isBrace(t)) { words.push(t); continue; }
      if (t.brace === '{') {
        let node = flush(true);
        if (!node) {
          // "{" on its own line opens the block of the statement just before it.
          const prev = top().children.at(-1);
          if (!prev || prev.children) throw new KeepalivedError('KEEPALIVED_SYNTAX', t.file, t.line, t.column, '"{" without a keyword before it');
          node = { ...prev, children: [] };
          top().children[top().children.length - 1] = node;
        }
        stack.push({ children: node.children!, opener: node });
      } else {
        flush(false);
        if (stack.length === 1) throw new KeepalivedError('KEEPALIVED_SYNTAX', t.file, t.line, t.column, '"}" without a block to close');
        stack.pop();
      }
    }
    flush(false);
  }
  if (stack.length > 1) {
    const o = stack[stack.length - 1]!.opener!;
    throw new KeepalivedError('KEEPALIVED_SYNTAX', o.file, o.line, o.column, `block "${o.keyword}" is not closed (missing "}")`);
  }
  return root;
}
