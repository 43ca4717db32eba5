/**
 * The logging role every subsystem depends on. pino's Logger satisfies it; src/daemon wires pino,
 * tests can pass silentLogger or a recorder. Kept here so subsystems never import pino directly.
 */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  trace(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  fatal(obj: object | string, msg?: string): void;
}

export const silentLogger: Logger = {
  child: () => silentLogger,
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  fatal: () => {},
};

/** A logger that records entries in memory (unit tests assert on reasons of transitions). */
export class RecordingLogger implements Logger {
  constructor(
    readonly entries: Array<{ level: string; bindings: Record<string, unknown>; obj: unknown; msg?: string }> = [],
    private readonly bindings: Record<string, unknown> = {},
  ) {}
  child(b: Record<string, unknown>): Logger {
    return new RecordingLogger(this.entries, { ...this.bindings, ...b });
  }
  private rec(level: string, obj: object | string, msg?: string) {
    this.entries.push({ level, bindings: this.bindings, obj, msg });
  }
  trace(o: object | string, m?: string) { this.rec('trace', o, m); }
  debug(o: object | string, m?: string) { this.rec('debug', o, m); }
  info(o: object | string, m?: string) { this.rec('info', o, m); }
  warn(o: object | string, m?: string) { this.rec('warn', o, m); }
  error(o: object | string, m?: string) { this.rec('error', o, m); }
  fatal(o: object | string, m?: string) { this.rec('fatal', o, m); }
}
