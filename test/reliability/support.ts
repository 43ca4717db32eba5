/** Helpers of the reliability suite: watching a process's signal handlers, a systemd notify socket. */
import { readFileSync } from 'node:fs';
import { start, waitFor, type Running } from '../support/proc.js';

/** Signals the process has handlers for (SigCgt of /proc/PID/status), e.g. has(pid, 1) for SIGHUP. */
export function catches(pid: number, signo: number): boolean {
  const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m !== null && ((BigInt(`0x${m[1]}`) >> BigInt(signo - 1)) & 1n) === 1n;
}

/** Wait until `pid` handles SIGHUP and SIGTERM, i.e. lvsd run has installed its handlers. */
export function handlersInstalled(pid: number): Promise<true> {
  return waitFor(() => (catches(pid, 1) && catches(pid, 15) ? true : undefined), `pid ${pid} to install its SIGHUP/SIGTERM handlers`, 20_000, 2);
}

/**
 * A unix datagram socket standing in for systemd's $NOTIFY_SOCKET (Node's dgram has no AF_UNIX,
 * python3 has): every datagram received is one line of output().
 */
export async function notifySocket(path: string): Promise<{ proc: Running; messages(): string[] }> {
  const py = [
    'import socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.bind(sys.argv[1])',
    'print("bound", flush=True)',
    'while True:',
    '    print(s.recv(4096).decode().replace("\\n", " "), flush=True)',
  ].join('\n');
  const proc = start('python3', ['-c', py, path]);
  await waitFor(() => (proc.output().includes('bound\n') ? true : undefined), 'the notify socket', 10_000);
  return { proc, messages: () => proc.output().split('\n').slice(1).filter(Boolean) };
}

/** Log messages ("msg" of pino lines) in order. */
export function logMessages(output: string): string[] {
  const out: string[] = [];
  for (const line of output.split('\n')) {
    try {
      const o = JSON.parse(line) as { msg?: string };
      if (o.msg) out.push(o.msg);
    } catch {
      /* not JSON */
    }
  }
  return out;
}
