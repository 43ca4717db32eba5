/**
 * A configuration's diagnostics and the error that carries them, apart from the loader (load.ts):
 * the daemon's main thread reports and formats them but loads files on a worker thread
 * (offload.ts), so it imports this module and not the schema, the YAML parser and zod, whose
 * modules a start would otherwise load twice (once per thread; seconds in the lab guest).
 */
import { LvsdError } from '../core/errors.js';

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

/**
 * Errors shown per load; the rest are counted. A file with 10,000 mistakes needs the first few
 * fixed (usually one cause), and a reload's log line must stay readable.
 */
export const MAX_ERRORS_SHOWN = 50;

export type ConfigErrorCode = 'CONFIG_SYNTAX' | 'CONFIG_SCHEMA' | 'CONFIG_SEMANTIC' | 'CONFIG_IO' | 'CONFIG_TIMEOUT' | 'CONFIG_WORKER';

export class ConfigError extends LvsdError {
  /**
   * @param diagnostics the errors shown (at most MAX_ERRORS_SHOWN) and the warnings
   * @param omitted errors found but not shown
   */
  constructor(readonly diagnostics: readonly Diagnostic[], code: ConfigErrorCode, readonly omitted = 0, options?: { cause?: unknown }) {
    const lines = diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    const more = omittedNote(omitted);
    super(code, (more ? [...lines, more] : lines).join('\n'), options);
    this.name = 'ConfigError';
  }
}

/** "… and 9,950 more errors", or undefined when every error is shown. */
export function omittedNote(omitted: number): string | undefined {
  return omitted > 0 ? `… and ${omitted.toLocaleString('en-US')} more error${omitted === 1 ? '' : 's'}` : undefined;
}

/** Every error line of a ConfigError for a log or a terminal, the count of the unshown ones last. */
export function errorLines(e: ConfigError): string[] {
  const lines = e.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  const more = omittedNote(e.omitted);
  return more ? [...lines, more] : lines;
}
