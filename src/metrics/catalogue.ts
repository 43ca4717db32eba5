/**
 * The metric catalogue: every lvsd_* metric a registry holds, with its type, label names and help,
 * rendered as the table in docs/operations.md. The table is generated from the registry the daemon
 * really builds (test/metrics/catalogue.test.ts compares it and rewrites it with LVSD_UPDATE_DOCS=1),
 * so the documentation cannot drift from the code.
 */
import type { Registry } from 'prom-client';
import { expositionsOf } from './exposition.js';

export interface MetricDoc {
  readonly name: string;
  readonly type: string;
  readonly labels: readonly string[];
  readonly help: string;
}

export const CATALOGUE_BEGIN = '<!-- metrics catalogue: generated from the registry by test/metrics/catalogue.test.ts (LVSD_UPDATE_DOCS=1 rewrites it) -->';
export const CATALOGUE_END = '<!-- end of metrics catalogue -->';

/**
 * The lvsd_* metrics of `registry` and of the expositions attached to it (./exposition.ts), sorted
 * by name. Reading a prom-client metric's type runs its collect().
 */
export async function catalogue(registry: Registry): Promise<MetricDoc[]> {
  const out: MetricDoc[] = [];
  for (const m of registry.getMetricsAsArray()) {
    const name = (m as unknown as { name: string }).name;
    if (!name.startsWith('lvsd_')) continue;
    const { type } = await (m as unknown as { get(): Promise<{ type: string }> }).get();
    out.push({ name, type: String(type), labels: [...((m as unknown as { labelNames?: string[] }).labelNames ?? [])], help: (m as unknown as { help: string }).help });
  }
  for (const e of expositionsOf(registry)) out.push(...e.families.filter((f) => f.name.startsWith('lvsd_')));
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The markdown table between the catalogue markers. */
export function renderCatalogue(docs: readonly MetricDoc[]): string {
  const rows = docs.map((d) => `| \`${d.name}\` | ${d.type} | ${d.labels.join(', ')} | ${cell(d.help)} |`);
  return [CATALOGUE_BEGIN, '', '| metric | type | labels | meaning |', '|---|---|---|---|', ...rows, '', CATALOGUE_END].join('\n');
}
