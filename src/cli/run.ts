import { pino } from 'pino';
import { Daemon } from '../daemon/daemon.js';
import { defaultSubsystems } from '../daemon/subsystems.js';
import { ConfigError, errorLines, formatDiagnostic, omittedNote } from '../config/index.js';
import { isLvsdError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { parseCommandLine, CONFIG_OPTION } from './args.js';
import { lvsdVersion } from './version.js';
import { captureSignals, type LvsdSignal } from '../daemon/signals.js';
import { SystemdNotifier } from '../daemon/notify.js';

export const summary = 'run the daemon in the foreground (systemd-friendly)';
export const usage = `Usage: lvsd run -c FILE [--state-dir DIR] [--listen ADDR:PORT] [--log-level LEVEL]

Runs lvsd in the foreground, logging JSON lines (pino) to stdout.
  -c, --config FILE     configuration file (default /etc/lvsd/lvsd.yaml)
  --state-dir DIR       where the lock file goes (default: global.state_dir, /run/lvsd)
  --listen ADDR:PORT    HTTP endpoint for /metrics, /healthz, /status (default: global.api.listen)
  --log-level LEVEL     trace|debug|info|warn|error|fatal (default: global.log_level)

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
  });
  const configFile = o.config ?? '/etc/lvsd/lvsd.yaml';
  const forcedLevel = o['log-level'];
  const logger = pino({ level: forcedLevel ?? 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
  const log = logger as unknown as Logger;
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
