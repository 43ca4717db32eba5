/**
 * Metric families written straight in the Prometheus text format (version 0.0.4, as prom-client
 * writes it), for the few whose series count grows with the managed table: 10,000 virtual servers
 * × 10 real servers are ~1,000,000 series, which prom-client builds as one label object per series
 * and serialises in one synchronous pass (40 s on the dev host, event loop blocked throughout;
 * bench/results/scrape.md). An exposition instead yields its text in chunks, giving the event loop a
 * turn (setImmediate) between chunks, and /metrics streams the chunks to the client after the
 * registry's own output. One registry, one scrape: `scrape(registry)` is the whole /metrics body.
 */
import type { Registry } from 'prom-client';
import type { MetricDoc } from './catalogue.js';

export interface Exposition {
  /** The families it writes (name, type, label names, help), known without reading anything. */
  readonly families: readonly MetricDoc[];
  /**
   * Its text: whole lines, in chunks small enough to write without holding the loop (≪ 20 ms);
   * a Buffer chunk is UTF-8 and goes to the socket as is. Buffer chunks are borrowed: a consumer
   * finishes the iterator (runs to its end, or return()) only once it no longer needs their bytes —
   * the table metrics then hand the memory back to their worker thread (src/ipvs/table-metrics.ts).
   */
  chunks(): AsyncIterable<string | Buffer>;
}

const attached = new WeakMap<Registry, Exposition[]>();

/** Adds `e` to what `scrape(registry)` writes after the registry's own metrics. */
export function attachExposition(registry: Registry, e: Exposition): void {
  const list = attached.get(registry);
  if (list) list.push(e);
  else attached.set(registry, [e]);
}

export function expositionsOf(registry: Registry): readonly Exposition[] {
  return attached.get(registry) ?? [];
}

/** The /metrics body in chunks: prom-client's output, then each attached exposition's. */
export async function* scrape(registry: Registry): AsyncGenerator<string | Buffer> {
  yield await registry.metrics();
  for (const e of expositionsOf(registry)) yield* e.chunks();
}

/** The whole body as one string (tests and small registries). */
export async function scrapeText(registry: Registry): Promise<string> {
  let out = '';
  for await (const c of scrape(registry)) out += typeof c === 'string' ? c : c.toString('utf8');
  return out;
}

/** A label value in the text format: backslash, double quote and line feed escaped. */
export function escapeLabelValue(v: string): string {
  return /["\\\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** HELP text: backslash and line feed escaped. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** `# HELP` and `# TYPE` of a family, preceded by the blank line prom-client puts between families. */
export function familyHeader(d: MetricDoc): string {
  return `\n# HELP ${d.name} ${escapeHelp(d.help)}\n# TYPE ${d.name} ${d.type}\n`;
}
