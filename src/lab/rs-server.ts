/**
 * A real server for lab traffic tests: an HTTP server that answers every request with one line
 * "NAME LOCAL_ADDRESS REMOTE_ADDRESS" (the address the connection arrived on tells NAT, where the
 * real server sees its own address, from DR/TUN, where it sees the VIP) and an `x-real-server` header.
 * Usage: node rs-server.js NAME PORT [BIND_ADDRESS] [--keep-alive]. Prints "listening NAME PORT"
 * when ready; exits on SIGTERM. Without --keep-alive every reply closes its connection (one request =
 * one connection, which is what spreads requests over real servers); with it, HTTP/1.1 clients keep
 * their connection for further requests (the long-lived connections of the demo's failover).
 */
import { createServer } from 'node:http';

const args = process.argv.slice(2);
const keepAlive = args.includes('--keep-alive');
const [name, portArg, bind] = args.filter((a) => a !== '--keep-alive');
const port = Number(portArg);
if (!name || !Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('usage: rs-server NAME PORT [BIND_ADDRESS] [--keep-alive]\n');
  process.exit(2);
}
const strip = (a: string | undefined) => (a ?? '?').replace(/^::ffff:/, '');
const server = createServer((req, res) => {
  const body = `${name} ${strip(req.socket.localAddress)} ${strip(req.socket.remoteAddress)}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-real-server': name, ...(keepAlive ? {} : { connection: 'close' }) });
  res.end(body);
});
// Keep-alive: idle connections stay open for 10 minutes (the demo's clients send every few hundred ms).
server.keepAliveTimeout = keepAlive ? 600_000 : 0;
server.on('error', (e) => {
  process.stderr.write(`rs-server ${name}: ${e.message}\n`);
  process.exit(1);
});
server.listen({ port, host: bind ?? '::', ipv6Only: false }, () => process.stdout.write(`listening ${name} ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)).closeAllConnections());
