/**
 * The control of bench/scrape.ts's main-thread watch: a process that does nothing but the same 5 ms
 * tick (performance.now, eventLoopUtilization, one pread of /proc/thread-self/schedstat), started
 * before the scrapes, beside the scraped process. What it records over a scrape — the most CPU its
 * thread used between two ticks, its longest gap — is what an idle event loop shows at the same
 * moment on the same machine: in the lab guest (one CPU, every syscall a trap, CPU time charged in
 * 10 ms steps and host preemption charged to the current task) that floor is tens of ms.
 * stdin: `reset` starts a new record; `report` prints `MAX_GAP_MS MAX_CPU_MS` and a newline.
 */
import { openSync, readSync } from 'node:fs';
import { performance as perf } from 'node:perf_hooks';

const TICK_MS = Number(process.argv[2] ?? 5);
const fd = openSync('/proc/thread-self/schedstat', 'r');
const buf = Buffer.alloc(128);
const cpuMs = () => Number(buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, 0)).split(' ')[0]) / 1e6;

let last = performance.now();
let lastCpu = cpuMs();
let maxGap = 0;
let maxCpu = 0;
const timer = setInterval(() => {
  const now = performance.now();
  perf.eventLoopUtilization();
  const c = cpuMs();
  maxGap = Math.max(maxGap, now - last);
  maxCpu = Math.max(maxCpu, c - lastCpu);
  last = now;
  lastCpu = c;
}, TICK_MS);

let pending = '';
process.stdin.on('data', (d: Buffer) => {
  pending += d.toString();
  for (let i; (i = pending.indexOf('\n')) >= 0;) {
    const cmd = pending.slice(0, i).trim();
    pending = pending.slice(i + 1);
    if (cmd === 'reset') maxGap = maxCpu = 0;
    else if (cmd === 'report') process.stdout.write(`${maxGap.toFixed(1)} ${maxCpu.toFixed(1)}\n`);
  }
});
process.stdin.on('end', () => clearInterval(timer));
