/**
 * Benchmark helper: the lvsd health subsystem alone, checking the farm's listeners.
 * argv: COUNT PER_ADDRESS BASE_PORT INTERVAL TIMEOUT FALL RISE MAX_CONCURRENT.
 * Prints "started <epoch ms>" then one line per published change: "rs <index> <up|down> <epoch ms> <reason>".
 * On "status" (stdin) prints "status <json>"; exits on "quit".
 */
import { createInterface } from 'node:readline';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { Bus } from '../src/core/bus.js';
import { SystemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/log.js';
import { parseConfigText } from '../src/config/load.js';
import { createHealthSubsystem } from '../src/health/subsystem.js';
import { endpointOf } from './health-farm.js';

const [count, per, base, interval, timeout, fall, rise, maxConc] = process.argv.slice(2).map(Number) as number[];
const N = count ?? 5000;
const PER = per ?? 100;
const BASE = base ?? 30000;

function yaml(): string {
  const out = ['virtual_servers:'];
  const perVs = 100;
  for (let v = 0; v * perVs < N; v++) {
    out.push(`  - address: 192.0.2.${1 + (v % 250)}`, `    port: ${80 + Math.floor(v / 250)}`, `    interval: ${interval ?? 1}`, `    timeout: ${timeout ?? 1}`, `    fall: ${fall ?? 1}`, `    rise: ${rise ?? 1}`, `    retry_delay: ${interval ?? 1}`, '    real_servers:');
    for (let i = v * perVs; i < Math.min(N, (v + 1) * perVs); i++) {
      const e = endpointOf(i, PER, BASE);
      out.push(`      - { address: ${e.host}, port: ${e.port}, checks: [{ type: tcp }] }`);
    }
  }
  return out.join('\n') + '\n';
}

async function main() {
  const cfg = parseConfigText(yaml(), 'bench.yaml', { checkFiles: false, hostname: 'bench' }).config;
  const index = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    const e = endpointOf(i, PER, BASE);
    index.set(`${e.host}:${e.port}`, i);
  }
  const bus = new Bus();
  let initial = 0;
  bus.on('health.rs', (e) => {
    if (initial < N) {
      initial++;
      return; // the initial publication
    }
    process.stdout.write(`rs ${index.get(e.rs)} ${e.up ? 'up' : 'down'} ${Date.now()} ${e.reason.replace(/\s+/g, '_').slice(0, 80)}\n`);
  });
  const sub = createHealthSubsystem({ bus, registry: new Registry(), logger: silentLogger, clock: new SystemClock() }, { maxConcurrent: maxConc ?? 1000 });
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  await sub.start(cfg);
  process.stdout.write(`started ${Date.now()}\n`);
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l === 'status') {
      const s = sub.status();
      process.stdout.write(`status ${JSON.stringify({ inFlight: s.checks_in_flight, queued: s.checks_queued, run: s.checks_run, rss: process.memoryUsage().rss, lagP99Ms: lag.percentile(99) / 1e6, lagMaxMs: lag.max / 1e6 })}\n`);
    } else if (l === 'quit') {
      void sub.stop().then(() => process.exit(0));
    }
  });
}
void main();
