/**
 * Strict command lines for every lvsd command, on Node's own `node:util` parseArgs (strict mode):
 * an unknown option, a value given to a flag, a missing value or a stray argument is a usage error
 * (exit 2) that names the option and, for a near miss, suggests the known one. `lvsd ipvs apply
 * --dryrun` once programmed the kernel because the old hand-made parser ignored unknown flags.
 *
 * What parseArgs does not do and this file adds: the did-you-mean, messages in lvsd's words, a
 * bounded number of positionals, and commands that take a command line of their own (`lab exec CMD`),
 * whose options stop at "--" or at the first word that is not an option.
 */
import { parseArgs as nodeParseArgs } from 'node:util';
import { suggest } from '../core/suggest.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface OptionDef {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
}
export type OptionSpec = Readonly<Record<string, OptionDef>>;

type ValueOf<D extends OptionDef> = D['type'] extends 'string' ? string : boolean;
export type OptionValues<O extends OptionSpec> = {
  -readonly [K in keyof O]?: O[K]['multiple'] extends true ? ValueOf<O[K]>[] : ValueOf<O[K]>;
};

export interface CommandLine<O extends OptionSpec> {
  values: OptionValues<O>;
  positionals: string[];
  /** The words after "--", or from the first non-option word when `tail` is set. */
  rest: string[];
}

export interface Shape {
  /** Names of the positional arguments accepted, in order (default none); for the usage error. */
  readonly positionals?: readonly string[];
  /** The command runs another command line: options stop at "--" or the first non-option word. */
  readonly tail?: boolean;
}

/** The option as a person wrote it: `--name` or `-c`. */
function optionName(spec: OptionSpec, name: string): string {
  return `--${name}${spec[name]?.short ? ` (-${spec[name]!.short})` : ''}`;
}

/** Where the options end for a command with a tail: at "--" or the first word that is no option. */
function splitTail(argv: readonly string[], spec: OptionSpec): { head: string[]; rest: string[] } {
  const takesValue = (a: string): boolean => {
    if (a.includes('=')) return false;
    const def = a.startsWith('--') ? spec[a.slice(2)] : Object.values(spec).find((d) => `-${d.short}` === a);
    return def?.type === 'string';
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return { head: argv.slice(0, i), rest: argv.slice(i + 1) };
    if (!a.startsWith('-') || a === '-') return { head: argv.slice(0, i), rest: argv.slice(i) };
    if (takesValue(a)) i++;
  }
  return { head: [...argv], rest: [] };
}

/** Turns parseArgs' errors into usage errors in lvsd's words. */
function usageErrorOf(e: unknown, spec: OptionSpec): UsageError {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const opt = /'(-[^']*)'/.exec(msg)?.[1] ?? msg;
    const bare = opt.replace(/^-+/, '').replace(/=.*$/, '');
    const names = Object.keys(spec);
    const prefixed = names.filter((n) => bare.length >= 2 && n.startsWith(bare));
    const near = suggest(bare, names) ?? (prefixed.length === 1 ? prefixed[0] : undefined);
    return new UsageError(`unknown option ${opt}${near ? `; did you mean --${near}?` : ''}`);
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const long = /--([\w-]+)/.exec(msg)?.[1];
    const name = long !== undefined && spec[long] ? optionName(spec, long) : (/'([^']*)'/.exec(msg)?.[1] ?? 'an option');
    if (/argument missing/.test(msg)) return new UsageError(`${name} needs a value`);
    if (/does not take an argument/.test(msg)) return new UsageError(`${name} takes no value`);
    if (/ambiguous/.test(msg)) return new UsageError(`${name} needs a value (write --${long ?? 'option'}=VALUE for a value that starts with "-")`);
  }
  return new UsageError(msg);
}

/**
 * Parses a command's arguments strictly. `--` ends the options; what follows is `rest` when the
 * shape has a tail, and positionals otherwise.
 */
export function parseCommandLine<const O extends OptionSpec>(argv: readonly string[], options: O, shape: Shape = {}): CommandLine<O> {
  const { head, rest } = shape.tail ? splitTail(argv, options) : { head: [...argv], rest: [] };
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = nodeParseArgs({ args: head, options: options as Record<string, OptionDef>, strict: true, allowPositionals: true });
  } catch (e) {
    throw usageErrorOf(e, options);
  }
  const allowed = shape.positionals ?? [];
  if (parsed.positionals.length > allowed.length) {
    const stray = parsed.positionals[allowed.length]!;
    throw new UsageError(allowed.length ? `unexpected argument "${stray}" (takes ${allowed.join(' ')})` : `unexpected argument "${stray}"`);
  }
  return { values: parsed.values as OptionValues<O>, positionals: parsed.positionals, rest };
}

/** The `-c FILE` / `--config FILE` pair every config-reading command takes. */
export const CONFIG_OPTION = { config: { type: 'string', short: 'c' } } as const satisfies OptionSpec;
