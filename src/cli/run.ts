import { performance } from 'node:perf_hooks';
import { Daemon } from '../daemon/daemon.js';
import { defaultSubsystems } from '../daemon/subsystems.js';
import { ConfigError, errorLines, formatDiagnostic, omittedNote } from '../config/errors.js';
import { isLvsdError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { parseCommandLine, CONFIG_OPTION, UsageError } from './args.js';
import { lvsdVersion } from './version.js';
import { createDaemonLogger, LOG_FORMATS, type LogFormat } from '../daemon/logger.js';
import { captureSignals, type LvsdSignal } from '../daemon/signals.js';
import { SystemdNotifier } from '../daemon/notify.js';

export const summary = 'run the daemon in the foreground (systemd-friendly)';
export const usage = `Usage: lvsd run -c FILE [--state-dir DIR] [--listen ADDR:PORT] [--log-level LEVEL] [--log-format json|pretty]

Runs lvsd in the foreground. Logs: JSON lines (pino, string levels, host and router_id on every line),
trace/debug/info on stdout, warn/error/fatal on stderr (under journald prefixed with their syslog
priority, so \`journalctl -p err\` finds errors); one readable line per event when stdout is a terminal.
  -c, --config FILE     configuration file (default /etc/lvsd/lvsd.yaml)
  --state-dir DIR       where the lock file goes (default: global.state_dir, /run/lvsd)
  --listen ADDR:PORT    HTTP endpoint for /metrics, /healthz, /status (default: global.api.listen)
  --log-level LEVEL     trace|debug|info|warn|error|fatal (default: global.log_level)
  --log-format FORMAT   json or pretty (default: pretty on a terminal, json otherwise)

Signals: SIGTERM/SIGINT stop cleanly (bounded by global.shutdown_timeout); SIGHUP reloads the file —
an invalid file is rejected, logged and counted, and the running configuration keeps serving.
Signals are handled from the start: a SIGHUP during start is applied once start is done, a
SIGTERM during start stops what was started. Under systemd (Type=notify) READY=1 is sent on
$NOTIFY_SOCKET once running.
Exit status: 0 after a clean stop, 1 invalid configuration or start failure, 2 usage,
75 another lvsd holds this director's lock.
`;

export async function main(argv: string[]): Promise<number> {
  const { values: o } = parseCommandLine(argv, {
    ...CONFIG_OPTION,
    'state-dir': { type: 'string' },
    listen: { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
  });
  const format = o['log-format'];
  if (format !== undefined && !(LOG_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--log-format: "${format}" is not one of ${LOG_FORMATS.join(', ')}`);
  const configFile = o.config ?? '/etc/lvsd/lvsd.yaml';
  const forcedLevel = o['log-level'];
  const { logger, setRouterId } = createDaemonLogger({ level: forcedLevel ?? 'info', ...(format ? { format: format as LogFormat } : {}) });
  const log = logger as unknown as Logger;
  // How long node took to start and to load lvsd's modules, ms since the process began (a slow
  // start is told apart from a slow configuration or subsystem, which are logged as they complete).
  const boot = performance.nodeTiming;
  log.info({ node_ms: Math.round(boot.bootstrapComplete), modules_ms: Math.round(performance.now()) }, 'lvsd starting');
  const stateDir = o['state-dir'];
  const listen = o.listen;
  const daemon = new Daemon({
    configFile,
    logger: log,
    version: lvsdVersion(),
    subsystems: defaultSubsystems(),
    ...(stateDir ? { stateDir } : {}),
    ...(listen ? { listen } : {}),
    setLogLevel: (lvl) => {
      if (!forcedLevel) logger.level = lvl;
    },
    setRouterId,
  });

  const notifier = new SystemdNotifier(log);
  let started = false;
  let reloadQueued = false;
  let cancelled = false;
  let stopping: Promise<void> | undefined;
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => (done = r));
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second stop signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'stopping');
    notifier.send('STOPPING=1');
    stopping = daemon.stop().then(() => done(0), (e) => {
      log.error({ err: errorMessage(e) }, 'stop failed');
      done(1);
    });
  };
  // Signals caught since src/cli/main.ts installed the handlers arrive here first, in order.
  captureSignals().deliver((signal: LvsdSignal) => {
    if (signal === 'SIGHUP') {
      if (!started) {
        if (!reloadQueued) log.info({ signal }, 'reload requested during start: applied once started');
        reloadQueued = true;
        return;
      }
      log.info({ signal }, 'reloading configuration');
      void daemon.reload();
    } else if (!started) {
      if (cancelled) process.exit(1);
      cancelled = true;
      log.info({ signal }, 'stop requested during start');
      daemon.cancelStart(signal);
    } else stop(signal);
  });

  try {
    await daemon.start();
  } catch (e) {
    if (isLvsdError(e, 'STOPPED')) {
      logger.flush?.();
      return 0;
    }
    if (e instanceof ConfigError) {
      for (const d of e.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
      if (e.omitted) process.stderr.write(omittedNote(e.omitted) + '\n');
      log.fatal({ errors: errorLines(e) }, 'invalid configuration');
      return 1;
    }
    log.fatal({ err: errorMessage(e), code: isLvsdError(e) ? e.code : undefined }, 'start failed');
    process.stderr.write(`lvsd: ${errorMessage(e)}\n`);
    return isLvsdError(e, 'LOCKED') ? 75 : 1;
  }
  started = true;
  notifier.send('READY=1');
  if (reloadQueued) {
    log.info({ signal: 'SIGHUP' }, 'reloading configuration (requested during start)');
    void daemon.reload();
  }
  const code = await finished;
  logger.flush?.();
  return code;
}
