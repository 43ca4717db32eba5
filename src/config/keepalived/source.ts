/**
 * keepalived.conf as a list of logical lines with their origin (file:line), before tokenising:
 *  - `include` (and includer/includem/includew/includeb/includea) pull in the files a glob(3)
 *    pattern matches, relative to the including file's directory; keepalived recognises them on the
 *    raw line, before conditionals and parameters, and so does this;
 *  - conditional lines `@ID rest` / `@^ID rest` are kept or dropped against the config id
 *    (keepalived's -i, default the host name without its domain);
 *  - parameters `$NAME=VALUE` (multi-line with a trailing `\`) are substituted where `${NAME}` or
 *    `$NAME` followed by white space appears, recursively; undefined ones stay as written.
 * Pure apart from the injected file access (keepalived.conf(5), "ADVANCED CONFIGURATION").
 */
import { posix } from 'node:path';
import { LvsdError } from '../../core/errors.js';
import { glob, type ListDir, type Exists } from './glob.js';

export interface Origin {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
}

export interface SourceLine extends Origin {
  readonly text: string;
}

/** File access the reader needs (a real adapter in files.ts, a map in unit tests). */
export interface ConfigFiles {
  read(path: string): string;
  list: ListDir;
  exists: Exists;
}

export class KeepalivedError extends LvsdError {
  constructor(
    code: 'KEEPALIVED_IO' | 'KEEPALIVED_SYNTAX',
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${line > 0 ? `${file}:${line}:${column}` : file}: ${detail}`, options);
    this.name = 'KeepalivedError';
  }
}

/** A remark about the input that is not a conversion gap (an include matching nothing, ...). */
export interface SourceNote extends Origin {
  readonly message: string;
}

export interface ReadOptions {
  /** keepalived's -i: which `@ID` lines apply. */
  readonly configId: string;
}

export interface ReadResult {
  readonly lines: SourceLine[];
  readonly files: string[];
  readonly notes: SourceNote[];
  /** Whether conditional (`@ID`) lines were met. */
  readonly conditional: boolean;
}

const INCLUDE = /^\s*(include[rmwba]?)\s+(.*?)\s*$/;
const MAX_DEPTH = 32;

/** Read FILE (absolute) and its includes into lines, then apply conditionals and parameters. */
export function readKeepalived(file: string, fs: ConfigFiles, opts: ReadOptions): ReadResult {
  const files: string[] = [];
  const notes: SourceNote[] = [];
  const raw: SourceLine[] = [];
  const stack: string[] = [];
  const load = (path: string, from: Origin | undefined) => {
    if (stack.includes(path)) {
      throw new KeepalivedError('KEEPALIVED_SYNTAX', from!.file, from!.line, 1, `include loop: ${[...stack, path].join(' → ')}`);
    }
    if (stack.length >= MAX_DEPTH) throw new KeepalivedError('KEEPALIVED_SYNTAX', from!.file, from!.line, 1, `includes nested more than ${MAX_DEPTH} deep`);
    let text: string;
    try {
      text = fs.read(path);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      if (from) throw new KeepalivedError('KEEPALIVED_IO', from.file, from.line, 1, `cannot read included file ${path} (${why})`, { cause: e });
      throw new KeepalivedError('KEEPALIVED_IO', path, 0, 0, `cannot read (${why})`, { cause: e });
    }
    files.push(path);
    stack.push(path);
    const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
    lines.forEach((t, i) => {
      const here: SourceLine = { file: path, line: i + 1, text: t };
      const m = INCLUDE.exec(t);
      if (!m) {
        raw.push(here);
        return;
      }
      const pattern = unquote(stripComment(m[2]!).trim());
      if (!pattern) throw new KeepalivedError('KEEPALIVED_SYNTAX', path, i + 1, 1, `${m[1]} needs a file name`);
      const abs = posix.resolve(posix.dirname(path), pattern);
      const matches = glob(abs, fs.list, fs.exists);
      if (matches.length === 0) notes.push({ file: path, line: i + 1, message: `${m[1]} ${pattern}: no file matches (keepalived goes on without it)` });
      for (const f of matches) load(f, here);
    });
    stack.pop();
  };
  load(file, undefined);
  const pre = preprocess(raw, opts.configId);
  return { lines: pre.lines, files, notes, conditional: pre.conditional };
}

function unquote(s: string): string {
  const m = /^(["'])(.*)\1$/.exec(s);
  return m ? m[2]! : s;
}

/** Text before a `#` or `!` comment outside quotes. */
export function stripComment(s: string): string {
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') { i++; continue; }
    if (q) { if (c === q) q = undefined; }
    else if (c === '"' || c === "'") q = c;
    else if (c === '#' || c === '!') return s.slice(0, i);
  }
  return s;
}

const DEFINE = /^\s*\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;
const COND = /^\s*@(\^?)(\S*)(.*)$/;
const MAX_SUBST = 64;

/** Conditionals, parameter definitions and substitution, line by line in keepalived's order. */
export function preprocess(input: readonly SourceLine[], configId: string): { lines: SourceLine[]; conditional: boolean } {
  const params = new Map<string, string>();
  const out: SourceLine[] = [];
  let conditional = false;
  const queue = input.map((l) => ({ ...l, depth: 0 }));
  for (let k = 0; k < queue.length; k++) {
    const l = queue[k]!;
    let text = l.text;
    const c = COND.exec(text);
    if (c) {
      conditional = true;
      const match = c[2] === configId;
      if (match === (c[1] === '^')) continue;
      text = c[3]!;
    }
    const d = DEFINE.exec(text);
    if (d) {
      let value = d[2]!;
      // A multi-line definition: the name alone, then lines ending in "\" up to one that does not.
      while (/\\\s*$/.test(value) && k + 1 < queue.length) {
        value = value.replace(/\\\s*$/, '') + '\n' + queue[++k]!.text;
      }
      params.set(d[1]!, value.replace(/^\s*\n/, '').replace(/\\\s*$/, '').trim());
      continue;
    }
    const sub = substitute(text, params, l.file, configId);
    if (sub !== text) {
      if (l.depth >= MAX_SUBST) throw new KeepalivedError('KEEPALIVED_SYNTAX', l.file, l.line, 1, 'parameter expansion does not end (a parameter uses itself)');
      // The expanded text is read as if written here: a value may hold several lines or start with
      // a conditional ("$IF_MAIN=@main").
      queue.splice(k + 1, 0, ...sub.split('\n').map((t) => ({ file: l.file, line: l.line, text: t, depth: l.depth + 1 })));
      continue;
    }
    out.push({ file: l.file, line: l.line, text: sub });
  }
  return { lines: out, conditional };
}

function substitute(text: string, params: ReadonlyMap<string, string>, file: string, configId: string): string {
  const builtin = (n: string): string | undefined =>
    n === '_PWD' ? posix.dirname(file) : n === '_INSTANCE' ? configId : n === '_HASH' ? '#' : params.get(n);
  let s = text;
  for (let i = 0; i < MAX_SUBST; i++) {
    const next = s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|$)/g, (all, a: string | undefined, b: string | undefined) => builtin((a ?? b)!) ?? all);
    if (next === s) return s;
    s = next;
  }
  return s;
}
