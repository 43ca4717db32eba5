/**
 * Applies planned ops through a Dataplane (which batches them: many requests per sendmsg, many in
 * flight). Races with someone else editing the table are settled, not reported as failures:
 *   add-* answered EEXIST → the object is there: SET it to the wanted attributes instead;
 *   set-dest answered ENOENT / set-service ESRCH → it vanished: ADD it;
 *   del-* answered ENOENT / ESRCH → already gone: done.
 * Anything else is a per-op failure; the remaining ops are still applied.
 */
import { serviceKey, type Dataplane, type IpvsOp } from './model.js';

export type OpResultKind = 'ok' | 'raced' | 'error';

export interface OpReport {
  readonly op: IpvsOp;
  readonly result: OpResultKind;
  readonly errno?: string;
  readonly message?: string;
}

export interface ExecReport {
  readonly reports: readonly OpReport[];
  readonly failed: readonly OpReport[];
  readonly durationMs: number;
}

function convert(op: IpvsOp, errno: string | undefined): IpvsOp | 'done' | undefined {
  switch (op.op) {
    case 'add-service': return errno === 'EEXIST' ? { op: 'set-service', service: op.service } : undefined;
    case 'set-service': return errno === 'ESRCH' ? { op: 'add-service', service: op.service } : undefined;
    case 'add-dest': return errno === 'EEXIST' ? { op: 'set-dest', service: op.service, dest: op.dest } : undefined;
    case 'set-dest': return errno === 'ENOENT' ? { op: 'add-dest', service: op.service, dest: op.dest } : undefined;
    case 'del-service': return errno === 'ESRCH' ? 'done' : undefined;
    case 'del-dest': return errno === 'ENOENT' || errno === 'ESRCH' ? 'done' : undefined;
  }
}

export async function execute(dp: Dataplane, ops: readonly IpvsOp[], now: () => number = () => performance.now()): Promise<ExecReport> {
  const t0 = now();
  const reports: Array<OpReport | undefined> = new Array(ops.length);
  if (!ops.length) return { reports: [], failed: [], durationMs: 0 };
  const first = await dp.submit(ops);
  const retryIdx: number[] = [];
  const retryOps: IpvsOp[] = [];
  const readded = new Set<string>();
  first.forEach((o, i) => {
    const op = ops[i]!;
    if (o.ok) { reports[i] = { op, result: 'ok' }; return; }
    const c = convert(op, o.errno);
    if (c === 'done') { reports[i] = { op, result: 'raced', ...(o.errno ? { errno: o.errno } : {}) }; return; }
    if (c) {
      if (c.op === 'add-service') readded.add(serviceKey(c.service));
      retryIdx.push(i);
      retryOps.push(c);
      return;
    }
    // A dest op whose service vanished (ESRCH) succeeds once the service is re-added in the retry.
    if (o.errno === 'ESRCH' && (op.op === 'add-dest' || op.op === 'set-dest') && readded.has(serviceKey(op.service))) {
      retryIdx.push(i);
      retryOps.push({ op: 'add-dest', service: op.service, dest: op.dest });
      return;
    }
    reports[i] = { op, result: 'error', ...(o.errno ? { errno: o.errno } : {}), ...(o.message ? { message: o.message } : {}) };
  });
  if (retryOps.length) {
    const second = await dp.submit(retryOps);
    second.forEach((o, j) => {
      const i = retryIdx[j]!;
      const op = ops[i]!;
      reports[i] = o.ok ? { op, result: 'raced' } : { op, result: 'error', ...(o.errno ? { errno: o.errno } : {}), ...(o.message ? { message: o.message } : {}) };
    });
  }
  const all = reports as OpReport[];
  return { reports: all, failed: all.filter((r) => r.result === 'error'), durationMs: now() - t0 };
}
