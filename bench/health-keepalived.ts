/**
 * lvsd's health checker vs keepalived's checker (Debian keepalived 2.2.7, `keepalived -C`) on the same
 * loopback real servers in the same run. keepalived's checker needs IPVS, so this runs inside the UML
 * lab (`bin/lvsd lab exec -- node dist/bench/health-keepalived.js`), where the kernel has IPVS; the
 * guest has one CPU, so the two checkers run one after the other, never at the same time.
 * For each: CPU of the checking process (from /proc/PID/stat) over the window and checks per second
 * (connections the farm accepted), then CPU per check and the ratio keepalived / lvsd.
 * Usage: node dist/bench/health-keepalived.js [--servers 500] [--seconds 60] [--interval 1]
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { endpointOf } from './health-farm.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (n: string, d: number) => (args.indexOf(`--${n}`) >= 0 ? Number(args[args.indexOf(`--${n}`) + 1]) : d);
const N = opt('servers', 500);
const SECONDS = opt('seconds', 60);
const INTERVAL = opt('interval', 1);
const PER = 100;
const BASE = 30000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function child(cmd: string, argv: string[]) {
  const c: ChildProcess = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: c.stdout! }).on('line', (l) => lines.push(l));
  c.stderr!.on('data', () => {});
  return {
    c,
    lines,
    send: (l: string) => c.stdin!.write(l + '\n'),
    async wait(pred: (l: string) => boolean, ms: number, what: string, from = 0) {
      const end = Date.now() + ms;
      for (;;) {
        for (let i = from; i < lines.length; i++) if (pred(lines[i]!)) return lines[i]!;
        if (Date.now() > end) throw new Error(`no ${what}`);
        await sleep(50);
      }
    },
  };
}

async function accepted(farm: ReturnType<typeof child>): Promise<number> {
  const n = farm.lines.length;
  farm.send('stats');
  const l = await farm.wait((x) => x.startsWith('accepted '), 10_000, 'stats', n);
  return Number(l.split(' ')[1]);
}

async function measure(farm: ReturnType<typeof child>, pid: () => number, warmupMs: number) {
  await sleep(warmupMs);
  const a0 = await accepted(farm);
  const c0 = cpuTicks(pid());
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const secs = (performance.now() - t0) / 1000;
  const cpu = (cpuTicks(pid()) - c0) / 100 / secs;
  const rate = ((await accepted(farm)) - a0) / secs;
  return { cpuPercent: +(cpu * 100).toFixed(1), checksPerSecond: +rate.toFixed(0), cpuPerCheckUs: +((cpu / rate) * 1e6).toFixed(1) };
}

async function main() {
  if (!existsSync('/proc/net/ip_vs')) {
    process.stderr.write('IPVS is not available here: run inside the lab (bin/lvsd lab exec -- node dist/bench/health-keepalived.js)\n');
    process.exit(69);
  }
  const farm = child(process.execPath, [join(here, 'health-farm.js'), String(N), String(PER), String(BASE)]);
  const kids: ChildProcess[] = [farm.c];
  try {
    await farm.wait((l) => l === 'ready', 300_000, 'farm ready');

    // lvsd first.
    const worker = child(process.execPath, [join(here, 'health-worker.js'), ...[N, PER, BASE, INTERVAL, 1, 1, 1, 1000].map(String)]);
    kids.push(worker.c);
    await worker.wait((l) => l.startsWith('started'), 300_000, 'lvsd start');
    const lvsd = await measure(farm, () => worker.c.pid!, 5000);
    const lvsdDowns = worker.lines.filter((l) => / down /.test(l)).length;
    worker.send('quit');
    await sleep(1000);

    // keepalived's checker on the same servers.
    const dir = mkdtempSync(join(tmpdir(), 'lvsd-kabench-'));
    const conf = join(dir, 'keepalived.conf');
    const rs: string[] = [];
    for (let i = 0; i < N; i++) {
      const e = endpointOf(i, PER, BASE);
      rs.push(`  real_server ${e.host} ${e.port} {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 1\n      retry 0\n    }\n  }`);
    }
    writeFileSync(conf, `global_defs {\n  router_id bench\n}\nvirtual_server 192.0.2.100 80 {\n  delay_loop ${INTERVAL}\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${rs.join('\n')}\n}\n`);
    const ka = child('keepalived', ['-n', '-C', '-f', conf, '-p', join(dir, 'k.pid'), '-c', join(dir, 'c.pid')]);
    kids.push(ka.c);
    const checkerPid = () => Number(readFileSync(join(dir, 'c.pid'), 'utf8').trim());
    for (let i = 0; i < 100 && !existsSync(join(dir, 'c.pid')); i++) await sleep(100);
    const keep = await measure(farm, checkerPid, 10_000);
    const dests = execFileSync('ipvsadm', ['-Ln'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('->') && l.includes('127.0.1.')).length;
    try { process.kill(checkerPid(), 'SIGKILL'); } catch { /* gone */ }
    ka.c.kill('SIGKILL');
    execFileSync('ipvsadm', ['-C']);

    const r = {
      servers: N,
      interval_s: INTERVAL,
      window_s: SECONDS,
      lvsd,
      lvsd_false_downs: lvsdDowns,
      keepalived: keep,
      keepalived_dests_in_ipvs: dests,
      ratio_cpu_per_check_keepalived_over_lvsd: +(keep.cpuPerCheckUs / lvsd.cpuPerCheckUs).toFixed(2),
    };
    process.stdout.write(JSON.stringify(r, null, 1) + '\n');
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  }
}
void main();
