/**
 * `lvsd demo` on the host: boots the real-kernel lab (src/lab/uml.ts: a user-mode-linux guest with
 * no network device to the host, so the host's interfaces are never touched), runs the scenario
 * (scenario.ts) in it, and narrates the scenario's event lines as they stream out of the guest's
 * console. Any other line the guest prints is shown as it is.
 */
import { Writable } from 'node:stream';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labRun, LAB_UNAVAILABLE_EXIT } from '../uml.js';
import { decode, type DemoSummary } from './events.js';
import { narrate, stamp } from './narrate.js';

const scenarioScript = join(dirname(fileURLToPath(import.meta.url)), 'scenario.js');

export interface LabDemoResult {
  /** 0: the story ran to its summary; 1: it stopped early; 69/70/124: the lab failed. */
  code: number;
  summary?: DemoSummary;
}

/** A Writable that calls `onLine` for every complete line written to it. */
function lineSink(onLine: (line: string) => void): Writable {
  let buf = '';
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf += chunk.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      cb();
    },
    final(cb) {
      if (buf) onLine(buf);
      cb();
    },
  });
}

export async function runLabDemo(out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<LabDemoResult> {
  const t0 = Date.now();
  let summary: DemoSummary | undefined;
  let failed = false;
  out(`${stamp(0)}  lvsd demo: two lvsd directors, three HTTP real servers and a client on a real IPVS kernel`);
  out(`${stamp(0)}  booting the lab (user-mode-linux, Linux with IPVS; no network device to the host)`);
  const stdout = lineSink((line) => {
    const e = decode(line);
    if (!e) return out(`           ${line}`);
    if (e.ev === 'summary') summary = e.summary;
    if (e.ev === 'fail') failed = true;
    for (const l of narrate(e, Date.now() - t0)) out(l);
  });
  const r = await labRun([process.execPath, scenarioScript], {
    stdout,
    // The guest's own boot is ~2 s; the story ~1 min on a quiet machine. Far more only on a machine
    // loaded many times over: the limit keeps a wedged guest from hanging the demo forever.
    timeoutSec: 900,
    log: (m) => out(`${stamp(Date.now() - t0)}  ${m}`),
  });
  await new Promise<void>((resolve) => stdout.end(resolve));
  if (r.code === LAB_UNAVAILABLE_EXIT) return { code: r.code };
  out('');
  out(`${stamp(Date.now() - t0)}  ${summary && !failed ? 'done: the lab guest has powered off; nothing was left on the host' : `the demo stopped early (guest status ${r.code})`}`);
  return { code: summary && !failed ? 0 : r.code === 0 ? 1 : r.code, ...(summary ? { summary } : {}) };
}
