import { readFileSync, accessSync, constants as fsConstants, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, resolve, dirname } from 'node:path';
import yaml from 'js-yaml';
import type { z } from 'zod';
import { LvsdError } from '../core/errors.js';
import { clusterConfig, CHECK_TYPES } from './schema.js';
import { buildModel, type ClusterConfig } from './model.js';
import { parseWithPositions, type SourceMap } from './positions.js';
import { semanticChecks } from './semantic.js';

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  readonly severity: Severity;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** "virtual_servers[1].real_servers[0].weight" ("" for the document root). */
  readonly path: string;
  readonly message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.path ? ` ${d.path}:` : '';
  return `${d.file}:${d.line}:${d.column}: ${d.severity}:${where} ${d.message}`;
}

export class ConfigError extends LvsdError {
  constructor(readonly diagnostics: readonly Diagnostic[], code: 'CONFIG_SYNTAX' | 'CONFIG_SCHEMA' | 'CONFIG_SEMANTIC' | 'CONFIG_IO') {
    super(code, diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic).join('\n'));
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  readonly file: string;
  readonly config: ClusterConfig;
  readonly warnings: readonly Diagnostic[];
  /** Raw text, kept so a reload can tell "unchanged". */
  readonly text: string;
}

export function pathToString(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s ? `.${String(seg)}` : String(seg);
  }
  return s;
}

/** Damerau-free Levenshtein distance; small inputs only (key names). */
export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase().replace(/-/g, '_');
  for (const c of candidates) {
    const d = editDistance(w, c);
    if (d < bestD) { bestD = d; best = c; }
  }
  // Near miss: at most a third of the word wrong (and at least 1 edit allowed), or one contains the other.
  if (best !== undefined && (bestD <= Math.max(1, Math.floor(best.length / 3)) || (w.length >= 4 && (best.includes(w) || w.includes(best))))) return best;
  return undefined;
}

// ------------------------------------------------------------ schema walking (for known keys)

type AnySchema = z.ZodType & { _zod: { def: Record<string, unknown> & { type: string } } };

/** The object-schema keys valid at a data path, resolving arrays, optionals, defaults and unions. */
export function knownKeysAt(root: z.ZodType, data: unknown, path: ReadonlyArray<PropertyKey>): string[] {
  let s = root as AnySchema;
  let d: unknown = data;
  const unwrap = (x: AnySchema, v: unknown): AnySchema => {
    for (let i = 0; i < 20; i++) {
      const def = x._zod.def;
      if (def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'nullable' || def.type === 'readonly' || def.type === 'catch') x = def.innerType as AnySchema;
      else if (def.type === 'pipe') x = def.in as AnySchema;
      else if (def.type === 'lazy') x = (def.getter as () => AnySchema)();
      else if (def.type === 'union') {
        const opts = def.options as AnySchema[];
        const disc = (def as { discriminator?: string }).discriminator;
        const objs = opts.map((o) => unwrap(o, v)).filter((o) => o._zod.def.type === 'object');
        if (disc && v && typeof v === 'object') {
          const want = (v as Record<string, unknown>)[disc];
          const hit = objs.find((o) => {
            const lit = ((o._zod.def.shape as Record<string, AnySchema>)[disc]?._zod.def as { values?: unknown[] } | undefined)?.values;
            return lit?.includes(want);
          });
          if (hit) return hit;
        }
        if (v && typeof v === 'object' && !Array.isArray(v) && objs.length) return objs[0]!;
        const arr = opts.map((o) => unwrap(o, v)).find((o) => o._zod.def.type === 'array');
        if (Array.isArray(v) && arr) return arr;
        return objs[0] ?? x;
      } else return x;
    }
    return x;
  };
  s = unwrap(s, d);
  for (const seg of path) {
    const def = s._zod.def;
    if (def.type === 'object') {
      s = (def.shape as Record<string, AnySchema>)[String(seg)] ?? s;
    } else if (def.type === 'array') {
      s = def.element as AnySchema;
    } else if (def.type === 'record') {
      s = def.valueType as AnySchema;
    }
    d = d && typeof d === 'object' ? (d as Record<string, unknown>)[seg as string] : undefined;
    s = unwrap(s, d);
  }
  return s._zod.def.type === 'object' ? Object.keys(s._zod.def.shape as object) : [];
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}

function valueAt(data: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let d = data;
  for (const seg of path) d = d && typeof d === 'object' ? (d as Record<string, unknown>)[seg as string] : undefined;
  return d;
}

function issueMessage(issue: z.core.$ZodIssue, data: unknown): string {
  const got = valueAt(data, issue.path as PropertyKey[]);
  switch (issue.code) {
    case 'invalid_type':
      if (got === undefined) return `is required (expected ${issue.expected})`;
      return `expected ${issue.expected}, got ${describeValue(got)}`;
    case 'too_small': {
      const i = issue as z.core.$ZodIssueTooSmall;
      if (i.origin === 'array') return `needs at least ${String(i.minimum)} item(s)`;
      if (i.origin === 'string') return `must not be shorter than ${String(i.minimum)} character(s)`;
      return `must be ${i.inclusive ? '>=' : '>'} ${String(i.minimum)}, got ${describeValue(got)}`;
    }
    case 'too_big': {
      const i = issue as z.core.$ZodIssueTooBig;
      if (i.origin === 'array') return `allows at most ${String(i.maximum)} item(s)`;
      if (i.origin === 'string') return `must not be longer than ${String(i.maximum)} character(s)`;
      return `must be ${i.inclusive ? '<=' : '<'} ${String(i.maximum)}, got ${describeValue(got)}`;
    }
    case 'invalid_value':
      return `expected one of ${(issue.values as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(got)}`;
    case 'invalid_union': {
      const disc = (issue as { note?: string }).note;
      if (disc) {
        const last = issue.path[issue.path.length - 1];
        if (last === 'type') {
          const s = typeof got === 'string' ? suggest(got, CHECK_TYPES) : undefined;
          return `expected one of ${CHECK_TYPES.map((t) => JSON.stringify(t)).join(', ')}, got ${describeValue(got)}${s ? `; did you mean "${s}"?` : ''}`;
        }
        return `${disc}; got ${describeValue(got)}`;
      }
      // Report the most specific branch message when there is one.
      const branches = (issue as z.core.$ZodIssueInvalidUnion).errors ?? [];
      const inner = branches.flat().find((e) => e.code !== 'invalid_type');
      if (inner) return `${inner.message} (got ${describeValue(got)})`;
      return `has the wrong shape: got ${describeValue(got)}`;
    }
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}, got ${describeValue(got)}`;
    case 'invalid_format':
      return `${issue.message}, got ${describeValue(got)}`;
    default:
      return issue.message;
  }
}

function syntaxDiagnostic(e: unknown, file: string): Diagnostic {
  if (e instanceof yaml.YAMLException) {
    const mark = e.mark;
    return {
      severity: 'error',
      file,
      line: (mark?.line ?? 0) + 1,
      column: (mark?.column ?? 0) + 1,
      path: '',
      message: `YAML syntax: ${e.reason}`,
    };
  }
  return { severity: 'error', file, line: 1, column: 1, path: '', message: `YAML: ${String(e)}` };
}

export function schemaDiagnostics(issues: readonly z.core.$ZodIssue[], data: unknown, map: SourceMap, file: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of issues) {
    const path = issue.path as PropertyKey[];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(clusterConfig, data, path);
      for (const k of issue.keys) {
        const at = map.find([...(path as Array<string | number>), k], { key: true });
        const s = suggest(k, known);
        const hint = s ? `; did you mean "${s}"?` : known.length ? ` (known keys: ${known.join(', ')})` : '';
        out.push({ severity: 'error', file, line: at.line, column: at.column, path: pathToString([...path, k]), message: `unknown key "${k}"${hint}` });
      }
      continue;
    }
    const at = map.find(path as Array<string | number>);
    out.push({ severity: 'error', file, line: at.line, column: at.column, path: pathToString(path), message: issueMessage(issue, data) });
  }
  return out.sort((a, b) => a.line - b.line || a.column - b.column);
}

export interface ValidateOptions {
  /** Skip filesystem checks of scripts (used when validating text that is not on this machine). */
  checkFiles?: boolean;
  hostname?: string;
}

/** Validate YAML text; returns the model and warnings or throws ConfigError. */
export function parseConfigText(text: string, file: string, opts: ValidateOptions = {}): LoadedConfig {
  let parsed: { value: unknown; map: SourceMap };
  try {
    parsed = parseWithPositions(text, file);
  } catch (e) {
    throw new ConfigError([syntaxDiagnostic(e, file)], 'CONFIG_SYNTAX');
  }
  const data = parsed.value ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([{ severity: 'error', file, line: 1, column: 1, path: '', message: `the document must be a mapping, got ${describeValue(data)}` }], 'CONFIG_SCHEMA');
  }
  const r = clusterConfig.safeParse(data);
  if (!r.success) throw new ConfigError(schemaDiagnostics(r.error.issues, data, parsed.map, file), 'CONFIG_SCHEMA');
  const baseDir = dirname(resolve(file));
  const findings = semanticChecks(r.data, {
    checkFiles: opts.checkFiles ?? true,
    resolveScript: (p) => (isAbsolute(p) ? p : resolve(baseDir, p)),
    fileStatus,
  });
  const diags = findings
    .map((f) => {
      const at = parsed.map.find(f.path, { key: f.pointAtKey ?? false });
      return { severity: f.severity, file, line: at.line, column: at.column, path: pathToString(f.path), message: f.message } satisfies Diagnostic;
    })
    .sort((a, b) => a.line - b.line || a.column - b.column);
  const errors = diags.filter((d) => d.severity === 'error');
  if (errors.length) throw new ConfigError(diags, 'CONFIG_SEMANTIC');
  return { file, text, config: buildModel(r.data, opts.hostname ?? hostname()), warnings: diags.filter((d) => d.severity === 'warning') };
}

function fileStatus(p: string): 'ok' | 'missing' | 'not-executable' | 'not-file' {
  try {
    const st = statSync(p);
    if (!st.isFile()) return 'not-file';
    accessSync(p, fsConstants.X_OK);
    return 'ok';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'not-executable';
  }
}

export function loadConfigFile(file: string, opts: ValidateOptions = {}): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError([{ severity: 'error', file, line: 1, column: 1, path: '', message: `cannot read file (${code})` }], 'CONFIG_IO');
  }
  return parseConfigText(text, file, opts);
}
