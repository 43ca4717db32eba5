/** Minimal flag parser: --flag, --flag value, --flag=value, -c value; "--" ends flags. */
export interface ParsedArgs {
  flags: Map<string, string | true>;
  positional: string[];
  /** Everything after "--". */
  rest: string[];
}

export function parseArgs(argv: readonly string[], valued: readonly string[] = []): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  let rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { rest = argv.slice(i + 1); break; }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) { flags.set(a.slice(2, eq), a.slice(eq + 1)); continue; }
      const name = a.slice(2);
      if (valued.includes(name) && i + 1 < argv.length) flags.set(name, argv[++i]!);
      else flags.set(name, true);
    } else if (a.startsWith('-') && a.length === 2) {
      const name = a.slice(1);
      if (valued.includes(name) && i + 1 < argv.length) flags.set(name, argv[++i]!);
      else flags.set(name, true);
    } else positional.push(a);
  }
  return { flags, positional, rest };
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export function flagString(p: ParsedArgs, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = p.flags.get(n);
    if (typeof v === 'string') return v;
    if (v === true) throw new UsageError(`${n.length === 1 ? "-" : "--"}${n} needs a value`);
  }
  return undefined;
}
