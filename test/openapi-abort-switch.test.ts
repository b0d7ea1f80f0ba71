/** The light aborts of outgoing calls (openapi/abort-switch.ts): undici honours them, and a service's stop pulls every one in flight. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { AbortSwitch, AbortSwitches } from '../openapi/abort-switch.js';

/** A server that never answers. */
async function hangingServer(t: Test): Promise<string> {
  const server: Server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

t.test('an undici call given a switch rejects with the reason it was pulled with', async (t) => {
  const url = await hangingServer(t);
  const budget = new AbortSwitch();
  const reason = new DOMException('no answer in 50 ms', 'TimeoutError');
  setTimeout(() => budget.abort(reason), 50);
  await t.rejects(request(url, { signal: budget }), reason);
  t.equal(budget.listenerCount('abort'), 0, 'undici let go of the switch');
  budget.abort(new Error('again'));
  t.equal(budget.reason, reason, 'a second pull changes nothing');
});

t.test('stopping pulls every switch in flight, and a switch opened after is pulled already', async (t) => {
  const url = await hangingServer(t);
  const stopping = new AbortController();
  const switches = new AbortSwitches(stopping.signal);
  const first = switches.open();
  const second = switches.open();
  const finished = switches.open();
  finished.done();
  const calls = [request(url, { signal: first.switch }), request(url, { signal: second.switch })];
  const shutdown = new Error('shutting down');
  setTimeout(() => stopping.abort(shutdown), 50);
  for (const call of calls) await t.rejects(call, shutdown);
  t.notOk(finished.switch.aborted, 'a call that was done is not pulled');
  const late = switches.open();
  t.ok(late.switch.aborted, 'opened after the stop: pulled at once');
  t.equal(late.switch.reason, shutdown);
  await t.rejects(request(url, { signal: late.switch }), shutdown, 'and its call never starts');
});
