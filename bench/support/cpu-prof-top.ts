/**
 * Self time by function of V8 CPU profiles (`node --cpu-prof`; bench/sync-pair.ts --cpu-prof):
 *   node dist/bench/support/cpu-prof-top.js FILE.cpuprofile... [--top 25]
 * Per file: the profile's span, the sampled time that was not idle, and the functions with the
 * most self time (summed over their nodes: function name, file and line). "(idle)" is the thread
 * waiting in its event loop; "(program)" is native work V8 cannot attribute (syscalls among it);
 * "(garbage collector)" is GC.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const i = process.argv.indexOf('--top');
const top = i >= 0 ? Number(process.argv[i + 1]) : 25;
const files = process.argv.slice(2).filter((a, j, all) => a !== '--top' && all[j - 1] !== '--top');
for (const f of files) {
  const p = JSON.parse(readFileSync(f, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (const [k, id] of p.samples.entries()) {
    // timeDeltas[k] is the time since the previous sample: it belongs to sample k - 1's node.
    const dt = p.timeDeltas[k + 1] ?? 0;
    const n = byId.get(id)!;
    const name = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url ? `${n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  }
  const idle = self.get('(idle)') ?? 0;
  const span = (p.endTime - p.startTime) / 1e6;
  console.log(`${basename(f)}: span ${span.toFixed(1)} s, sampled ${(total / 1e6).toFixed(1)} s, not idle ${((total - idle) / 1e6).toFixed(2)} s (${((100 * (total - idle)) / Math.max(1, total)).toFixed(1)} %)`);
  const rows = [...self.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, us] of rows) console.log(`  ${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / Math.max(1, total - idle)).toFixed(1).padStart(5)} %  ${k}`);
}
