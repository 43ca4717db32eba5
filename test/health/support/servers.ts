/** Loopback servers that behave — or misbehave on purpose — for the checker tests. */
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import dgram from 'node:dgram';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Closable {
  port: number;
  close(): Promise<void>;
}

/** A TCP listener; `onConn` decides what happens to each accepted connection (default: keep open). */
export async function tcpServer(onConn: (s: net.Socket) => void = () => {}, host = '127.0.0.1', port = 0): Promise<Closable & { server: net.Server; conns: Set<net.Socket> }> {
  const conns = new Set<net.Socket>();
  const server = net.createServer((s) => {
    conns.add(s);
    s.on('error', () => {});
    s.on('close', () => conns.delete(s));
    onConn(s);
  });
  await new Promise<void>((r) => server.listen({ port, host }, r));
  return {
    server,
    conns,
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns) c.destroy();
        server.close(() => r());
      }),
  };
}

/** A port with nothing listening (bound then released; the kernel answers RST / ICMP). */
export async function closedPort(): Promise<number> {
  const s = await tcpServer();
  await s.close();
  return s.port;
}

/** A listener whose accept queue is full, so new SYNs are dropped and connects hang (python3, listen(0), never accepts). */
export async function blackholeListener(): Promise<Closable> {
  const py: ChildProcess = spawn('python3', ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const port = await new Promise<number>((res, rej) => {
    py.stdout!.once('data', (d) => res(Number(String(d).trim())));
    py.once('error', rej);
  });
  // Fill the queue (backlog 0 holds one connection); the next connect stays in SYN_SENT.
  const filler = net.connect(port, '127.0.0.1');
  filler.on('error', () => {});
  await new Promise((r) => filler.once('connect', r));
  return {
    port,
    close: async () => {
      filler.destroy();
      py.kill('SIGKILL');
    },
  };
}

export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export async function httpServer(h: HttpHandler): Promise<Closable & { server: http.Server }> {
  const server = http.createServer(h);
  const socks = new Set<net.Socket>();
  server.on('connection', (s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
  });
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1' }, r));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => { for (const s of socks) s.destroy(); server.close(() => r()); }),
  };
}

/** Self-signed certificate for CN/SAN `name`, made with openssl at test time. */
export function selfSigned(name: string): { key: Buffer; cert: Buffer; certFile: string; dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'lvsd-health-tls-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  return { key: readFileSync(keyFile), cert: readFileSync(certFile), certFile, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function httpsServer(tls: { key: Buffer; cert: Buffer }, h: HttpHandler): Promise<Closable & { server: https.Server; snis: string[] }> {
  const snis: string[] = [];
  const server = https.createServer({ key: tls.key, cert: tls.cert }, h);
  server.on('secureConnection', (s) => snis.push(String((s as unknown as { servername?: string | false }).servername || '')));
  server.on('tlsClientError', () => {});
  const socks = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
  });
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1' }, r));
  return {
    server,
    snis,
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => { for (const s of socks) s.destroy(); server.close(() => r()); }),
  };
}

/** UDP server; `reply` returns the answer to send (undefined = stay silent). */
export async function udpServer(reply: (m: Buffer) => Buffer | undefined, host = '127.0.0.1'): Promise<Closable & { received: Buffer[] }> {
  const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  const received: Buffer[] = [];
  s.on('message', (m, rinfo) => {
    received.push(m);
    const r = reply(m);
    if (r) s.send(r, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => s.bind(0, host, r));
  return { port: s.address().port, received, close: () => new Promise<void>((r) => s.close(() => r())) };
}

export async function closedUdpPort(): Promise<number> {
  const s = await udpServer(() => undefined);
  await s.close();
  return s.port;
}
