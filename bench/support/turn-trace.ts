/**
 * What ran on the main thread between two ticks of bench/scrape.ts's watch (`--trace-turns`): each
 * message event of a worker thread (its type, chunk count, fresh shared slabs announced), each
 * ServerResponse.write (bytes, whether the socket took it), each garbage collection of the main
 * isolate (PerformanceObserver 'gc': kind and duration), and each tick's CPU (schedstat) — so a tick
 * that held the loop for long can be read against what it contained. Installed by patching the
 * prototypes in this process only (nothing in src/ changes, and nothing runs without the flag);
 * every recorded event costs one pread of /proc/thread-self/schedstat before and after.
 */
import { openSync, readSync } from 'node:fs';
import { ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

export interface TraceEvent {
  /**
   * performance.now() when it started, its wall time and the main-thread CPU it took (ms). The CPU is
   * schedstat's, which the kernel brings up to date at its scheduler tick and at context switches
   * only: a short event often reads 0 and a long one ±1 tick; the wall time is exact, and in a turn
   * that held the CPU (a slow tick's CPU ≈ its wall time) it is where the CPU went.
   */
  t: number;
  ms: number;
  cpu: number;
  what: string;
}
interface Tick { from: number; t: number; cpu: number; stat: number[] }
interface GcEntry { t: number; ms: number; kind: string }

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};

const statFd = openSync('/proc/thread-self/stat', 'r');
const statusFd = openSync('/proc/thread-self/status', 'r');
const statBuf = Buffer.alloc(2048);
/** The main thread's [minflt, majflt, utime, stime] (/proc/thread-self/stat, times in 10 ms ticks) and its involuntary context switches. */
function threadStat(): number[] {
  const s = statBuf.toString('latin1', 0, readSync(statFd, statBuf, 0, statBuf.length, 0));
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const st = statBuf.toString('latin1', 0, readSync(statusFd, statBuf, 0, statBuf.length, 0));
  const nv = /nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st);
  return [Number(f[7]), Number(f[9]), Number(f[11]), Number(f[12]), Number(nv?.[1] ?? 0)];
}

/** performance.now() + this = CLOCK_MONOTONIC in ms (process.hrtime's clock; perf record -k mono), to find a slow tick in a profile. */
const MONO_OFFSET_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

export class TurnTrace {
  readonly events: TraceEvent[] = [];
  readonly ticks: Tick[] = [];
  readonly gcs: GcEntry[] = [];
  private readonly obs: PerformanceObserver;
  private readonly undo: Array<() => void> = [];

  constructor(private readonly cpuMs: () => number) {
    this.obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
        this.gcs.push({ t: e.startTime, ms: e.duration, kind: GC_KINDS[kind] ?? `kind ${kind}` });
      }
    });
    this.obs.observe({ entryTypes: ['gc'] });
    const trace = this;
    const emit = Worker.prototype.emit;
    Worker.prototype.emit = function (this: Worker, name: string | symbol, ...args: unknown[]): boolean {
      if (name !== 'message') return emit.call(this, name, ...args);
      const t = performance.now();
      const c0 = trace.cpuMs();
      const r = emit.call(this, name, ...args);
      const m = args[0] as { ev?: string; chunks?: unknown[]; slabs?: unknown[] };
      trace.events.push({ t, ms: performance.now() - t, cpu: trace.cpuMs() - c0, what: `worker ${m?.ev ?? '?'}${m?.chunks ? ` ${m.chunks.length} chunks` : ''}${m?.slabs?.length ? ` ${m.slabs.length} fresh slabs` : ''}` });
      return r;
    };
    this.undo.push(() => (Worker.prototype.emit = emit));
    const write = ServerResponse.prototype.write;
    ServerResponse.prototype.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
      const t = performance.now();
      const c0 = trace.cpuMs();
      const r = (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      const n = typeof chunk === 'string' ? chunk.length : (chunk as Uint8Array).byteLength;
      trace.events.push({ t, ms: performance.now() - t, cpu: trace.cpuMs() - c0, what: `write ${n}${r ? '' : ' (full)'}` });
      return r;
    } as typeof write;
    this.undo.push(() => (ServerResponse.prototype.write = write));
    // The response's writes are corked and reach the socket in a nextTick (chunked encoding): the
    // system calls are in Socket's _writev/_write, timed here.
    for (const name of ['_writev', '_write'] as const) {
      const orig = Socket.prototype[name] as (...a: unknown[]) => void;
      (Socket.prototype as unknown as Record<string, unknown>)[name] = function (this: Socket, data: unknown, ...rest: unknown[]): void {
        const t = performance.now();
        const c0 = trace.cpuMs();
        orig.call(this, data, ...rest);
        const n = Array.isArray(data) ? data.reduce((a: number, c: { chunk: Uint8Array | string }) => a + (typeof c.chunk === 'string' ? c.chunk.length : c.chunk.byteLength), 0) : typeof data === 'string' ? data.length : (data as Uint8Array).byteLength;
        trace.events.push({ t, ms: performance.now() - t, cpu: trace.cpuMs() - c0, what: `socket ${name.slice(1)} ${n}` });
      };
      this.undo.push(() => ((Socket.prototype as unknown as Record<string, unknown>)[name] = orig));
    }
  }

  /** A tick of the watch at `t` (the one before it at `from`): `cpu` ms of main-thread CPU between them. */
  tick(from: number, t: number, cpu: number): void {
    this.ticks.push({ from, t, cpu, stat: threadStat() });
  }

  /** A step of the bench itself (which scrape runs), named in the report of the ticks after it. */
  mark(what: string): void {
    this.events.push({ t: performance.now(), ms: 0, cpu: -1, what });
  }

  /**
   * The ticks that held more than `overMs` of main-thread CPU, each with what ran between it and the
   * tick before (events summed by kind, the largest listed) and the collections that overlapped it.
   */
  report(overMs: number): string {
    this.obs.disconnect();
    for (const u of this.undo.splice(0)) u();
    const out: string[] = [];
    let ei = 0;
    let step = '';
    let stepAt = 0;
    for (const k of this.ticks) {
      const inside: TraceEvent[] = [];
      while (ei < this.events.length && this.events[ei]!.t <= k.t) {
        const e = this.events[ei++]!;
        if (e.cpu < 0) {
          step = e.what;
          stepAt = e.t;
        }
        else if (e.t > k.from) inside.push(e);
      }
      if (k.cpu <= overMs) continue;
      const gcs = this.gcs.filter((g) => g.t < k.t && g.t + g.ms > k.from);
      const byKind = new Map<string, { n: number; cpu: number; ms: number }>();
      for (const e of inside) {
        const kind = e.what.replace(/ \d+.*$/, '');
        const s = byKind.get(kind) ?? { n: 0, cpu: 0, ms: 0 };
        s.n++;
        s.cpu += e.cpu;
        s.ms += e.ms;
        byKind.set(kind, s);
      }
      // The main thread's user and system time (10 ms steps) and page faults since the tick before.
      const i = this.ticks.indexOf(k);
      const p = i > 0 && this.ticks[i - 1]!.t === k.from ? this.ticks[i - 1]!.stat : undefined;
      const d = p ? k.stat.map((v, j) => v - p[j]!) : undefined;
      const accounted = inside.reduce((a, e) => a + e.ms, 0);
      const top = [...inside].sort((a, b) => b.ms - a.ms).slice(0, 4);
      out.push(
        `slow tick (${step}, +${((k.t - stepAt) / 1000).toFixed(3)} s) at ${(k.t / 1000).toFixed(3)} s (CLOCK_MONOTONIC ${((k.from + MONO_OFFSET_MS) / 1000).toFixed(3)}–${((k.t + MONO_OFFSET_MS) / 1000).toFixed(3)} s): ${k.cpu.toFixed(1)} ms CPU over ${(k.t - k.from).toFixed(1)} ms wall; ` +
          `${[...byKind].map(([w, s]) => `${s.n} × ${w} ${s.ms.toFixed(1)} ms wall (${s.cpu.toFixed(1)} ms CPU)`).join(', ') || 'no traced event'}; outside them ${(k.t - k.from - accounted).toFixed(1)} ms wall; ` +
          `longest: ${top.map((e) => `${e.what} ${e.ms.toFixed(1)} ms`).join(', ') || '—'}; ` +
          `gc: ${gcs.map((g) => `${g.kind} ${g.ms.toFixed(1)} ms at +${(g.t - k.from).toFixed(1)}`).join(', ') || 'none'}` +
          (d ? `; user ${d[2]! * 10} ms, system ${d[3]! * 10} ms, ${d[0]} minor / ${d[1]} major page faults, ${d[4]} involuntary switches` : ''),
      );
    }
    const byKind = new Map<string, { n: number; ms: number; max: number }>();
    for (const g of this.gcs) {
      const s = byKind.get(g.kind) ?? { n: 0, ms: 0, max: 0 };
      s.n++;
      s.ms += g.ms;
      s.max = Math.max(s.max, g.ms);
      byKind.set(g.kind, s);
    }
    out.push(`main-thread gc over the run: ${[...byKind].map(([k, s]) => `${s.n} × ${k} (${s.ms.toFixed(1)} ms, longest ${s.max.toFixed(1)} ms)`).join(', ') || 'none'}`);
    // Each collection over 5 ms with the bench step it fell in.
    const marks = this.events.filter((e) => e.cpu < 0);
    for (const g of this.gcs) {
      if (g.ms < 5) continue;
      const m = marks.filter((e) => e.t <= g.t).pop();
      out.push(`  gc ${g.kind} ${g.ms.toFixed(1)} ms at ${(g.t / 1000).toFixed(3)} s (${m?.what ?? 'before the first step'})`);
    }
    return out.join('\n') + '\n';
  }
}
