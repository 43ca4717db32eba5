/**
 * The raw VRRP transport on real namespaces: keepalived's adverts decode; adverts arriving with a
 * TTL other than 255 and unicast adverts from unlisted sources are dropped with the right reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { NetLab, isRoot } from './support/net.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, 'support', 'transport-cli.js');
const skip = !isRoot() && 'needs root (network namespaces)';

type Line = { advert?: { version: number; vrid: number; priority: number; intervalMs: number; addresses: string[] }; src?: string; drop?: string };
const lines = (s: string): Line[] => s.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);

test('keepalived VRRPv3 adverts are received and decoded', { skip }, async () => {
  const lab = new NetLab('t');
  const conf = join(tmpdir(), `${lab.prefix}-ka.conf`);
  try {
    const a = lab.member('a', ['192.0.2.1/24']);
    const b = lab.member('b', ['192.0.2.2/24']);
    writeFileSync(conf, `global_defs {\n router_id ka\n}\nvrrp_instance VI_1 {\n state MASTER\n interface eth0\n virtual_router_id 42\n priority 150\n version 3\n advert_int 0.1\n virtual_ipaddress {\n 192.0.2.42/24\n 192.0.2.43/24\n }\n}\n`);
    lab.spawn(a, ['keepalived', '-n', '-l', '-D', '-G', '-P', '-f', conf, '-p', `${conf}.pid`, '-r', `${conf}.vpid`]);
    const l = lab.spawn(b, [process.execPath, cli, 'eth0', '4', '3', '42', '2', '100', '1500']);
    await l.exited;
    const got = lines(l.output()).filter((x) => x.advert);
    assert.ok(got.length >= 5, `expected several adverts, got: ${l.output()}`);
    assert.deepEqual(got.at(-1), { advert: { version: 3, vrid: 42, priority: 150, intervalMs: 100, addresses: ['192.0.2.42', '192.0.2.43'] }, src: '192.0.2.1' });
  } finally {
    await lab.destroy();
    for (const f of [conf, `${conf}.pid`, `${conf}.vpid`]) rmSync(f, { force: true });
  }
});

test('adverts with TTL != 255 are dropped as bad_ttl; unicast accepts only listed peers', { skip }, async () => {
  const lab = new NetLab('u');
  try {
    const a = lab.member('a', ['192.0.2.1/24']);
    const b = lab.member('b', ['192.0.2.2/24']);
    const c = lab.member('c', ['192.0.2.3/24']);
    // b listens (multicast); a sends with multicast TTL 1.
    const l = lab.spawn(b, [process.execPath, cli, 'eth0', '4', '3', '7', '1', '50', '1200']);
    const s = lab.spawn(a, [process.execPath, cli, 'eth0', '4', '3', '7', '1', '50', '800', 'send:100:1']);
    await Promise.all([l.exited, s.exited]);
    const got = lines(l.output());
    assert.ok(got.length >= 3, l.output());
    assert.ok(got.every((x) => x.drop === 'bad_ttl'), l.output());

    // Unicast: c accepts adverts from a only; b is not listed.
    const lu = lab.spawn(c, [process.execPath, cli, 'eth0', '4', '3', '8', '1', '50', '1200', 'peers=192.0.2.1']);
    const sa = lab.spawn(a, [process.execPath, cli, 'eth0', '4', '3', '8', '1', '50', '800', 'send:100', 'peers=192.0.2.3']);
    const sb = lab.spawn(b, [process.execPath, cli, 'eth0', '4', '3', '8', '1', '50', '800', 'send:90', 'peers=192.0.2.3']);
    await Promise.all([lu.exited, sa.exited, sb.exited]);
    const u = lines(lu.output());
    assert.ok(u.some((x) => x.advert?.priority === 100 && x.src === '192.0.2.1'), lu.output());
    assert.ok(u.some((x) => x.drop === 'bad_source' && x.src === '192.0.2.2'), lu.output());
    assert.ok(!u.some((x) => x.advert && x.src === '192.0.2.2'), lu.output());
  } finally {
    await lab.destroy();
  }
});
