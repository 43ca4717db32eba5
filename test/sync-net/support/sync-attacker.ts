/**
 * An attacker on the sync segment (namespace tests). Argument: JSON { local, port, wrongKey: hex, target }.
 * Joins 224.0.0.81 like a director, and for every genuine frame it overhears sends to `target`
 * (the group or a unicast address): the frame itself again (replay), a copy with one payload byte
 * changed (forgery), the same header re-signed with its own key under the genuine key id (wrong
 * key), a frame under its own key id (unknown key) and 20 random bytes (garbage). Prints one JSON
 * line of what it sent when killed with SIGTERM.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { sealFrame, openFrame, FrameType } from '../../../src/sync/wire.js';
import { makeKey } from '../../../src/config/keys.js';

const o = JSON.parse(process.argv[2]!) as { local: string; port: number; wrongKey: string; target: string };
const mine = makeKey(Buffer.from(o.wrongKey, 'hex'));
const sent = { replay: 0, forged: 0, wrong_key: 0, unknown_key: 0, garbage: 0 };
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const out = dgram.createSocket('udp4');
const tx = (b: Buffer) => new Promise<void>((r) => out.send(b, o.port, o.target, () => r()));
s.on('message', async (m) => {
  if (m.length < 64 || m.readUInt32BE(0) !== 0x4c565359) return;
  const header = { type: m[5] as FrameType, node: m.readUInt32BE(8), epoch: m.readBigUInt64BE(16), seq: m.readBigUInt64BE(24), payload: m.subarray(32, m.length - 32) };
  if (openFrame([mine], m).ok) return; // our own
  await tx(m); sent.replay++;
  const f = Buffer.from(m); f[33] = f[33]! ^ 0xff; await tx(f); sent.forged++;
  await tx(sealFrame({ id: m.readUInt32BE(12), secret: mine.secret }, { ...header, seq: header.seq + 100000n })); sent.wrong_key++;
  await tx(sealFrame(mine, { ...header, seq: header.seq + 200000n })); sent.unknown_key++;
  await tx(randomBytes(20)); sent.garbage++;
});
s.bind(o.port, () => { s.addMembership('224.0.0.81', o.local); out.bind(0, o.local, () => { out.setMulticastInterface(o.local); out.setMulticastLoopback(false); console.log('ready'); }); });
process.on('SIGTERM', () => { console.log(JSON.stringify(sent)); process.exit(0); });
