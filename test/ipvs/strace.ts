/**
 * Reads the strace fixtures (test/fixtures/ipvs/ipvsadm-sendmsg.txt, captured in the UML lab with
 * `strace -x -e trace=sendmsg,recvmsg`) back into netlink bytes. strace prints each nlmsghdr as a
 * struct and the rest as a "\x.." string; both are rebuilt here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/proc.js';

export interface Captured {
  readonly dir: 'send' | 'recv';
  readonly bytes: Buffer;
}
export interface CaptureCase {
  readonly name: string;
  readonly argv: string;
  readonly messages: Captured[];
  readonly exitNote?: string;
}

const FLAG: Record<string, number> = {
  NLM_F_REQUEST: 1, NLM_F_MULTI: 2, NLM_F_ACK: 4, NLM_F_ECHO: 8, NLM_F_DUMP_INTR: 0x10, NLM_F_DUMP_FILTERED: 0x20,
  NLM_F_ROOT: 0x100, NLM_F_MATCH: 0x200, NLM_F_ATOMIC: 0x400, NLM_F_DUMP: 0x300, NLM_F_CAPPED: 0x100, NLM_F_ACK_TLVS: 0x200,
};
const TYPE: Record<string, number> = { NLMSG_NOOP: 1, NLMSG_ERROR: 2, NLMSG_DONE: 3 };

function num(s: string): number {
  return s.startsWith('0x') ? parseInt(s, 16) : Number(s);
}
function unescape(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; ) {
    if (s[i] === '\\' && s[i + 1] === 'x') { out.push(parseInt(s.slice(i + 2, i + 4), 16)); i += 4; }
    else if (s[i] === '\\') {
      const c = s[i + 1]!;
      const m: Record<string, number> = { n: 10, t: 9, r: 13, '0': 0, '\\': 92, '"': 34, v: 11, f: 12 };
      out.push(m[c] ?? c.charCodeAt(0)); i += 2;
    } else { out.push(s.charCodeAt(i)); i++; }
  }
  return Buffer.from(out);
}

const HDR = /\{nlmsg_len=(\d+), nlmsg_type=([A-Z_]+|0x[0-9a-f]+)(?: \/\*[^*]*\*\/)?, nlmsg_flags=([A-Z_|0-9x]+), nlmsg_seq=(\d+), nlmsg_pid=(-?\d+)\}, (?:"((?:[^"\\]|\\.)*)"|(\d+))/g;

/** Messages with a plain "\x.." payload (requests, dump replies, info); error ACK structs are skipped. */
export function parseStraceLine(line: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of line.matchAll(HDR)) {
    const [, len, type, flags, seq, pid, str, int] = m;
    const t = TYPE[type!] ?? num(type!);
    let f = 0;
    for (const p of flags!.split('|')) f |= FLAG[p] ?? num(p);
    const payload = str !== undefined ? unescape(str) : Buffer.alloc(4);
    if (int !== undefined) payload.writeInt32LE(Number(int), 0);
    const b = Buffer.alloc(16 + payload.length);
    b.writeUInt32LE(Number(len), 0);
    b.writeUInt16LE(t, 4);
    b.writeUInt16LE(f, 6);
    b.writeUInt32LE(Number(seq) >>> 0, 8);
    b.writeUInt32LE(Number(pid) >>> 0, 12);
    payload.copy(b, 16);
    out.push(b);
  }
  return out;
}

export function loadCaptures(file = join(repoRoot, 'test', 'fixtures', 'ipvs', 'ipvsadm-sendmsg.txt')): { cases: CaptureCase[]; listOutput: string } {
  const text = readFileSync(file, 'utf8');
  const [head, listOutput = ''] = text.split('### list-output\n');
  const cases: CaptureCase[] = [];
  let cur: { name: string; argv: string; messages: Captured[]; exitNote?: string } | undefined;
  for (const line of head!.split('\n')) {
    const h = /^### (\S+) (.*)$/.exec(line);
    if (h) { cur = { name: h[1]!, argv: h[2]!, messages: [] }; cases.push(cur); continue; }
    if (!cur) continue;
    if (line.startsWith('# exit')) { cur.exitNote = line; continue; }
    const dir = line.includes('sendmsg(') ? 'send' : line.includes('recvmsg(') ? 'recv' : undefined;
    if (!dir) continue;
    for (const bytes of parseStraceLine(line)) cur.messages.push({ dir, bytes });
  }
  return { cases, listOutput };
}

/** Zero seq and pid so bytes from different runs compare. */
export function maskSeqPid(b: Buffer): Buffer {
  const c = Buffer.from(b);
  c.writeUInt32LE(0, 8);
  c.writeUInt32LE(0, 12);
  return c;
}
