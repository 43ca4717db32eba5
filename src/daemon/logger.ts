/**
 * The daemon's logger, for machines and for people (issue 20):
 * - JSON lines (pino) with string levels ("info", not 30), `host`, `pid` and, once a configuration is
 *   loaded, `router_id` on every line — children included, through pino's mixin;
 * - trace/debug/info on stdout, warn/error/fatal on stderr, each line on exactly one of them;
 * - under journald (systemd sets JOURNAL_STREAM) each line starts with its syslog priority, `<3>` for
 *   an error (sd-daemon(3)): journald strips it and files the line at that priority, so
 *   `journalctl -u lvsd -p err` finds lvsd's errors and the JSON stays intact;
 * - `pretty`: one readable line per event for a person at a terminal, by pino-pretty (the default when
 *   stdout is a terminal), instead of a formatter of our own.
 */
import { hostname } from 'node:os';
import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pino, type Logger as PinoLogger, type StreamEntry, type Level } from 'pino';
import type PinoPretty from 'pino-pretty';

/**
 * pino-pretty and its dependencies (~40 modules) are loaded only for the `pretty` format: a daemon
 * under systemd logs JSON, and every module costs its start time (seconds in the lab guest, where
 * each file read goes through hostfs). Synchronously (it is CommonJS), so the logger exists at once.
 */
const loadPretty = (): typeof PinoPretty => createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;

export type LogFormat = 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

export interface DaemonLogger {
  readonly logger: PinoLogger;
  /** Stamp `router_id` on every following line (called when a configuration is loaded). */
  setRouterId(id: string): void;
}

/** syslog priorities of pino's levels (RFC 5424 severities). */
const PRIORITY: Record<Level, number> = { trace: 7, debug: 7, info: 6, warn: 4, error: 3, fatal: 2 };

/** True when fd `fd` is the stream journald gave us (JOURNAL_STREAM = "device:inode", systemd.exec(5)). */
function isJournal(fd: number, env: NodeJS.ProcessEnv): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  try {
    const st = fstatSync(fd);
    return js === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/** A pino destination on `fd`, each line prefixed with its syslog priority when it goes to journald. */
function destination(fd: 1 | 2, level: Level, journal: boolean): StreamEntry['stream'] {
  const dest = pino.destination({ fd, sync: true });
  if (!journal) return dest;
  const prefix = `<${PRIORITY[level]}>`;
  return { write: (line: string) => dest.write(prefix + line) };
}

export function createDaemonLogger(opts: { level: string; format?: LogFormat; env?: NodeJS.ProcessEnv }): DaemonLogger {
  const env = opts.env ?? process.env;
  const format = opts.format ?? (process.stdout.isTTY ? 'pretty' : 'json');
  let routerId: string | undefined;
  const options: pino.LoggerOptions = {
    level: opts.level,
    base: { pid: process.pid, host: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: () => (routerId === undefined ? {} : { router_id: routerId }),
  };
  // Each level to the stream of the highest entry at or below it (dedupe): info and below on
  // stdout, warn and above on stderr.
  const split = (make: (fd: 1 | 2, level: Level) => StreamEntry['stream']): StreamEntry[] =>
    (['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const).map((level) => ({ level, stream: make(level === 'warn' || level === 'error' || level === 'fatal' ? 2 : 1, level) }));
  const streams =
    format === 'pretty'
      ? split((fd) => loadPretty()({ destination: fd, sync: true, colorize: fd === 1 ? process.stdout.isTTY === true : process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,host,hostname' }))
      : split((fd, level) => destination(fd, level, isJournal(fd, env)));
  const logger = pino(options, pino.multistream(streams, { dedupe: true, levels: pino.levels.values }));
  return {
    logger,
    setRouterId: (id) => {
      routerId = id;
    },
  };
}
