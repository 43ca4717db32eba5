/**
 * lvsd command-line entry. Each command lives in its own module, loaded on demand so that
 * `lvsd check-config` does not pay for netlink or raw sockets.
 */
import { lvsdVersion } from './version.js';
import { suggest } from '../core/suggest.js';
import { captureSignals } from '../daemon/signals.js';

export interface CommandModule {
  readonly summary: string;
  readonly usage: string;
  main(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<CommandModule>> = {
  'check-config': () => import('./check-config.js'),
  run: () => import('./run.js'),
  cleanup: () => import('./cleanup.js'),
  status: () => import('./status.js'),
  sync: () => import('./sync.js'),
  ipvs: () => import('./ipvs.js'),
  lab: () => import('./lab.js'),
  demo: () => import('./demo.js'),
  schema: () => import('./schema.js'),
  import: () => import('./import.js'),
};

async function usage(): Promise<string> {
  const lines = [`lvsd ${lvsdVersion()} — high-availability orchestrator for Linux Virtual Server director pairs`, '', 'Usage: lvsd COMMAND [options]', '', 'Commands:'];
  for (const [name, load] of Object.entries(commands)) {
    const m = await load();
    lines.push(`  ${name.padEnd(14)} ${m.summary}`);
  }
  lines.push('', 'Options:', '  --version      print the version', '  --help         this help; `lvsd COMMAND --help` for a command', '');
  return lines.join('\n');
}

export async function cli(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(await usage());
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(`lvsd ${lvsdVersion()}\n`);
    return 0;
  }
  // `lvsd run` handles SIGHUP/SIGTERM from here on, before its modules load (src/daemon/signals.ts).
  if (cmd === 'run') captureSignals();
  const load = commands[cmd];
  if (!load) {
    const near = suggest(cmd.replace(/^-+/, ''), Object.keys(commands));
    process.stderr.write(`lvsd: unknown ${cmd.startsWith('-') ? 'option' : 'command'} "${cmd}"${near ? `; did you mean "${near}"?` : ''}\n\n${await usage()}`);
    return 2;
  }
  const mod = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    const dd = rest.indexOf('--');
    const h = rest.findIndex((a) => a === '--help' || a === '-h');
    if (dd < 0 || h < dd) {
      process.stdout.write(`${mod.usage.trimEnd()}\n`);
      return 0;
    }
  }
  try {
    return await mod.main(rest);
  } catch (e) {
    if ((e as { name?: string })?.name !== 'UsageError') throw e;
    process.stderr.write(`lvsd ${cmd}: ${(e as Error).message}\nRun "lvsd ${cmd} --help" for its options.\n`);
    return 2;
  }
}

// Run when executed (bin/lvsd imports this module).
const code = await cli(process.argv.slice(2)).catch((e: unknown) => {
  const err = e as { name?: string; message?: string; stack?: string };
  if (err?.name === 'UsageError') {
    process.stderr.write(`lvsd: ${err.message}\n`);
    return 2;
  }
  process.stderr.write(`lvsd: ${err?.stack ?? String(e)}\n`);
  return 1;
});
if (code !== undefined && code !== -1) process.exitCode = code;
