/**
 * `lvsd import keepalived FILE`: converts a keepalived.conf (and its includes) to an lvsd
 * configuration. The conversion itself is pure (src/config/keepalived); this is the shell around it:
 * files, the check of the result, the report and the exit status.
 */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve, basename } from 'node:path';
import { convertKeepalived, nodeFiles, KeepalivedError, type Item } from '../config/keepalived/index.js';
import { parseConfigText, ConfigError, formatDiagnostic } from '../config/index.js';
import { parseCommandLine, UsageError } from './args.js';

export const summary = 'convert a keepalived.conf to lvsd YAML (exit 0 complete, 3 partial)';
export const usage = `Usage: lvsd import keepalived FILE [-o OUT] [--config-id ID] [--quiet]

Converts keepalived's FILE, with the files it includes, to an lvsd configuration (YAML) on stdout
or in OUT. What lvsd has no equivalent for is listed on stderr with its file:line, and marked in the
YAML where it belongs (comments starting "NOT CONVERTED"). The result is validated as
\`lvsd check-config --no-file-checks\` would; run check-config on the director to check the scripts.

  -o, --output OUT    write the YAML to OUT instead of stdout
  --config-id ID      which conditional lines (@ID ...) apply, as keepalived's -i
                      (default: the host name without its domain, as keepalived)
  --quiet             list nothing on stderr (the exit status still tells)

Exit status: 0 every setting converted; 3 converted, with settings not converted (listed);
1 FILE unreadable or not valid keepalived syntax, or the result is not a valid lvsd configuration;
2 usage error.
`;

export const EXIT_COMPLETE = 0;
export const EXIT_PARTIAL = 3;
export const EXIT_INVALID = 1;

export async function main(argv: string[]): Promise<number> {
  const { values: o, positionals } = parseCommandLine(
    argv,
    { output: { type: 'string', short: 'o' }, 'config-id': { type: 'string' }, quiet: { type: 'boolean' } },
    { positionals: ['keepalived', 'FILE'] },
  );
  const [format, file] = positionals;
  if (format !== 'keepalived') throw new UsageError(format === undefined ? 'missing the format: lvsd import keepalived FILE' : `unknown format "${format}" (lvsd imports keepalived)`);
  if (!file) throw new UsageError('missing FILE: lvsd import keepalived FILE');
  const configId = o['config-id'] ?? hostname().split('.')[0]!;
  const err = (s: string) => {
    if (o.quiet !== true) process.stderr.write(s);
  };
  let conv;
  try {
    conv = convertKeepalived(resolve(file), nodeFiles, { configId });
  } catch (e) {
    if (e instanceof KeepalivedError) {
      process.stderr.write(`lvsd import: ${e.message}\n`);
      return EXIT_INVALID;
    }
    throw e;
  }
  const out = o.output;
  if (out !== undefined) writeFileSync(out, conv.yaml);
  else process.stdout.write(conv.yaml);

  for (const i of conv.items) err(`${itemLine(i)}\n`);
  try {
    parseConfigText(conv.yaml, out ?? `${basename(file)}.lvsd.yaml`, { checkFiles: false });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`lvsd import: the converted configuration is not valid (the keepalived file has an error keepalived may also reject, or the importer missed a case):\n`);
    for (const d of e.diagnostics) process.stderr.write(`  ${formatDiagnostic(d)}\n`);
    return EXIT_INVALID;
  }
  const n = conv.items.filter((i) => i.kind === 'unsupported').length;
  if (conv.complete) {
    err(`lvsd import: complete — every setting of ${file} converted${out ? ` to ${out}` : ''}\n`);
    return EXIT_COMPLETE;
  }
  err(`lvsd import: partial — ${n} setting(s) of ${file} not converted (listed above, marked NOT CONVERTED in the YAML)${out ? `; written to ${out}` : ''}\n`);
  return EXIT_PARTIAL;
}

function itemLine(i: Item): string {
  return `${i.file}:${i.line}: ${i.kind === 'unsupported' ? 'not converted' : 'note'}: ${i.what}: ${i.message}`;
}
