/**
 * `lvsd schema`: the JSON Schema of the configuration file for editors (yaml-language-server), made
 * from the zod schema the loader uses, with descriptions taken from docs/config.md's key tables so
 * hover help says the same as the reference.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { clusterConfig } from '../config/schema.js';
import { parseCommandLine } from './args.js';

export const summary = 'print the JSON Schema of the configuration file (for editors)';
export const usage = `Usage: lvsd schema [-o FILE]

Prints the JSON Schema (draft 2020-12) of lvsd's YAML configuration, with descriptions from
docs/config.md. The committed copy is docs/lvsd.schema.json; use it with VS Code's YAML extension:
  # yaml-language-server: $schema=PATH/TO/lvsd.schema.json

  -o, --output FILE   write to FILE instead of standard output
`;

export interface DocRow {
  readonly path: string;
  readonly type: string;
  readonly default: string;
  readonly meaning: string;
  readonly keepalived: string;
}

/** Rows of the key tables in docs/config.md: `| \`path\` | type | default | meaning | keepalived |`. */
export function parseDocTables(markdown: string): Map<string, DocRow> {
  const rows = new Map<string, DocRow>();
  for (const line of markdown.split(/\r?\n/)) {
    const m = /^\|\s*`([^`]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    const cells = m[2]!.split(/(?<!\\)\|/).map((c) => c.trim());
    if (cells.length !== 4) continue;
    rows.set(m[1]!, { path: m[1]!, type: cells[0]!, default: cells[1]!, meaning: cells[2]!, keepalived: cells[3]! });
  }
  return rows;
}

export const docsPath = (): string => fileURLToPath(new URL('../../../docs/config.md', import.meta.url));

type JsonNode = { [k: string]: unknown };

/** Walk the generated schema along key paths ("a[].b") and attach the documented descriptions. */
function describe(node: JsonNode, prefix: string, docs: Map<string, DocRow>, depth = 0): void {
  if (depth > 40 || !node || typeof node !== 'object') return;
  const props = node.properties as Record<string, JsonNode> | undefined;
  if (props) {
    for (const [k, child] of Object.entries(props)) {
      const p = prefix ? `${prefix}.${k}` : k;
      const row = docs.get(p);
      if (row) {
        const ka = row.keepalived && row.keepalived !== '—' ? ` keepalived: ${row.keepalived}.` : '';
        const dflt = row.default && row.default !== 'required' && row.default !== '—' ? ` Default: ${row.default}.` : '';
        const md = `${row.meaning}${dflt}${ka}`;
        child.markdownDescription = md;
        child.description = md.replace(/`/g, '');
      }
      describe(child, p, docs, depth + 1);
    }
  }
  if (node.items && typeof node.items === 'object') describe(node.items as JsonNode, `${prefix}[]`, docs, depth + 1);
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    const alts = node[k];
    if (Array.isArray(alts)) for (const a of alts) describe(a as JsonNode, prefix, docs, depth + 1);
  }
}

export function buildJsonSchema(docsMarkdown?: string): JsonNode {
  let schema: JsonNode;
  try {
    schema = z.toJSONSchema(clusterConfig, { io: 'input', unrepresentable: 'any' }) as JsonNode;
  } catch {
    // A construct zod cannot express: fall back to a schema that at least lists the top-level keys.
    schema = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: Object.fromEntries(Object.keys(clusterConfig.shape).map((k) => [k, {}])),
    };
  }
  const out: JsonNode = {
    $schema: schema.$schema,
    title: 'lvsd cluster configuration',
    description: 'lvsd YAML configuration (docs/config.md). `lvsd check-config` also checks addresses and the rules across the file.',
    ...schema,
  };
  // The loader ignores top-level keys starting with "x-" (a home for YAML anchors).
  out.patternProperties = { '^x-': {} };
  if (docsMarkdown) describe(out, '', parseDocTables(docsMarkdown));
  return out;
}

export function renderJsonSchema(docsMarkdown?: string): string {
  return `${JSON.stringify(buildJsonSchema(docsMarkdown), null, 2)}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const { values: o } = parseCommandLine(argv, { output: { type: 'string', short: 'o' } });
  let docs: string | undefined;
  try {
    docs = readFileSync(docsPath(), 'utf8');
  } catch {
    docs = undefined; // installed without docs: the schema still works, without descriptions
  }
  const text = renderJsonSchema(docs);
  const out = o.output;
  if (out) writeFileSync(out, text);
  else process.stdout.write(text);
  return 0;
}
