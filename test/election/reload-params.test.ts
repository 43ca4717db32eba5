/**
 * The answer knobs reach the machine (paramsOf) and reload in place without new sockets
 * (reloadPlan): lower_prio_no_advert, higher_prio_send_advert, garp.lower_prio_repeat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/load.js';
import { paramsOf, reloadPlan } from '../../src/election/reload.js';

const cfg = (extra: string) =>
  parseConfigText(`vrrp_instances:\n  - name: V\n    interface: eth0\n    virtual_router_id: 9\n    virtual_addresses: [192.0.2.5/24]\n${extra}`, 'x.yaml', { checkFiles: false, hostname: 'test' }).config.vrrp_instances[0]!;

test('defaults: answer with an advert and a GARP burst; no advert before stepping down', () => {
  const p = paramsOf(cfg(''), '192.0.2.1');
  assert.deepEqual([p.lowerPrioNoAdvert, p.lowerPrioGarp, p.higherPrioSendAdvert], [false, true, false]);
});

test('set: no advert, no GARP (lower_prio_repeat 0), advert before stepping down; a reload of them is in place, no new socket, no re-announce', () => {
  const c = cfg('    lower_prio_no_advert: true\n    higher_prio_send_advert: true\n    garp:\n      lower_prio_repeat: 0\n');
  const p = paramsOf(c, '192.0.2.1');
  assert.deepEqual([p.lowerPrioNoAdvert, p.lowerPrioGarp, p.higherPrioSendAdvert], [true, false, true]);
  assert.equal(paramsOf(cfg('    garp:\n      master_repeat: 3\n'), '192.0.2.1').lowerPrioGarp, true, 'lower_prio_repeat defaults to master_repeat');
  const plan = reloadPlan(cfg(''), cfg('    lower_prio_no_advert: true\n    higher_prio_send_advert: true\n'));
  assert.deepEqual(plan, { kind: 'in_place', keys: ['lower_prio_no_advert', 'higher_prio_send_advert'], io: false, announce: false });
});
