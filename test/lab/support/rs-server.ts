/**
 * A real server for lab traffic tests: an HTTP server that answers every request with one line
 * "NAME LOCAL_ADDRESS REMOTE_ADDRESS" (the address the connection arrived on tells NAT, where the
 * real server sees its own address, from DR/TUN, where it sees the VIP) and an `x-real-server` header.
 * Usage: node rs-server.js NAME PORT [BIND_ADDRESS]. Prints "listening NAME PORT" when ready;
 * exits on SIGTERM.
 */
import { createServer } from 'node:http';

const [name, portArg, bind] = process.argv.slice(2);
const port = Number(portArg);
if (!name || !Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('usage: rs-server NAME PORT [BIND_ADDRESS]\n');
  process.exit(2);
}
const strip = (a: string | undefined) => (a ?? '?').replace(/^::ffff:/, '');
const server = createServer((req, res) => {
  const body = `${name} ${strip(req.socket.localAddress)} ${strip(req.socket.remoteAddress)}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'x-real-server': name, connection: 'close' });
  res.end(body);
});
server.keepAliveTimeout = 0;
server.on('error', (e) => {
  process.stderr.write(`rs-server ${name}: ${e.message}\n`);
  process.exit(1);
});
server.listen({ port, host: bind ?? '::', ipv6Only: false }, () => process.stdout.write(`listening ${name} ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)).closeAllConnections());
