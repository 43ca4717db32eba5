import { readConfigText } from '../config/read.js';
import { loadConfigOffThread, formatDiagnostic, omittedNote, ConfigError, type Diagnostic } from '../config/index.js';
import { parseCommandLine, CONFIG_OPTION } from './args.js';

export const summary = 'validate a configuration file (exit 0 valid, 1 invalid)';
export const usage = `Usage: lvsd check-config -c FILE [--quiet] [--json]

Validates FILE (YAML): syntax, schema, and checks across the file. Errors and warnings name
file:line:column and the key path. Exit status: 0 valid, 1 invalid, 2 usage error.

  -c, --config FILE   configuration file (default /etc/lvsd/lvsd.yaml)
  --quiet             print nothing when valid
  --json              print the diagnostics as JSON
  --no-file-checks    do not check that scripts exist (for validating elsewhere)
  --source / --no-source
                      show the offending line with a caret under each diagnostic
                      (default: when stderr is a terminal)
`;

/** The diagnostic's source line with a caret under its column, for people reading a terminal. */
export function sourceExcerpt(d: Diagnostic, text: string): string {
  const line = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)[d.line - 1];
  if (line === undefined) return '';
  const gutter = `${d.line} | `;
  const pad = line.slice(0, Math.max(0, d.column - 1)).replace(/[^\t]/g, ' ');
  return `${gutter}${line}\n${' '.repeat(gutter.length - 2)}| ${pad}^\n`;
}

export async function main(argv: string[]): Promise<number> {
  const { values: o } = parseCommandLine(argv, {
    ...CONFIG_OPTION,
    quiet: { type: 'boolean' },
    json: { type: 'boolean' },
    'no-file-checks': { type: 'boolean' },
    source: { type: 'boolean' },
    'no-source': { type: 'boolean' },
  });
  const file = o.config ?? '/etc/lvsd/lvsd.yaml';
  const showSource = o.source === true || (o['no-source'] !== true && process.stderr.isTTY === true);
  const print = (d: Diagnostic) => {
    process.stderr.write(formatDiagnostic(d) + '\n');
    if (!showSource || d.file !== file) return;
    try {
      // Bounded and regular files only, as the load: the path may be a FIFO or a device.
      process.stderr.write(sourceExcerpt(d, readConfigText(file)));
    } catch {
      /* unreadable: the diagnostic already says so */
    }
  };
  try {
    const r = await loadConfigOffThread(file, { checkFiles: o['no-file-checks'] !== true });
    if (o.json) {
      process.stdout.write(JSON.stringify({ valid: true, diagnostics: r.warnings }, null, 2) + '\n');
      return 0;
    }
    for (const w of r.warnings) print(w);
    if (!o.quiet) {
      const c = r.config;
      const rs = c.virtual_servers.reduce((n, v) => n + v.real_servers.length, 0);
      process.stdout.write(
        `${file}: valid — ${c.vrrp_instances.length} VRRP instance(s), ${c.vrrp_sync_groups.length} sync group(s), ` +
          `${c.virtual_servers.length} virtual server(s) with ${rs} real server(s)` +
          `${c.sync ? `, connection sync on ${c.sync.interface}` : ''}${r.warnings.length ? `, ${r.warnings.length} warning(s)` : ''}\n`,
      );
    }
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      if (o.json) process.stdout.write(JSON.stringify({ valid: false, diagnostics: e.diagnostics, ...(e.omitted ? { omitted_errors: e.omitted } : {}) }, null, 2) + '\n');
      else {
        for (const d of e.diagnostics) print(d);
        if (e.omitted) process.stderr.write(omittedNote(e.omitted) + '\n');
      }
      return 1;
    }
    throw e;
  }
}
