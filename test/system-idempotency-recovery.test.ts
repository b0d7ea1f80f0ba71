/**
 * An Idempotency-Key must never be poisoned by the system's own recovery (DESIGN.md, Idempotency-Key):
 * a retry re-drives its PENDING ticket and claims it again, the reconciler's abandonment carries its age
 * condition, and a retry that meets its own reference released starts over once with a new reference.
 * The races are set up with a proxy that holds back ticket-service's calls at the right moment.
 */
import t, { type Test } from 'tap';
import { startDelayingProxy, type DelayingProxy } from './helpers/delaying-proxy.js';
import { testStores } from './helpers/postgres.js';
import { startSystem, type StoreName, type TestSystem } from './helpers/system.js';
import { asTicket, createEvent, getEvent, getHold, holdsOf, raw, ticketBody, uuid } from './helpers/system-api.js';

const TIMEOUT_SECONDS = 4;
/** When the reconciler abandons a PENDING ticket (context.ts: abandonAfterMs). */
const ABANDON_AFTER_MS = TIMEOUT_SECONDS * 2000 + 1000;

async function systemBehindProxy(t: Test, store: StoreName): Promise<{ system: TestSystem; proxy: DelayingProxy }> {
  const proxy = await startDelayingProxy(t);
  const system = await startSystem(t, {
    store,
    env: { EVENT_SERVICE_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS), SWEEP_INTERVAL_SECONDS: '0.1' },
    eventServiceUrlForTickets: (url) => {
      proxy.target = url;
      return proxy.url;
    },
  });
  return { system, proxy };
}

const isCreateHold = (method: string, path: string) => method === 'POST' && path === '/holds';
const holdIdOf = (body: string): string => (JSON.parse(body) as { hold_id: string }).hold_id;
const buy = (system: TestSystem, eventId: number, key: string) =>
  raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(eventId, 2), headers: { 'idempotency-key': key } });

/** A first keyed attempt whose hold is taken at event-service but answered too late: 503, and its PENDING ticket's reference. */
async function attemptThatTimesOut(t: Test, system: TestSystem, proxy: DelayingProxy, eventId: number, key: string): Promise<string> {
  let reference = '';
  proxy.delayFor = (method, path, body) => {
    if (!isCreateHold(method, path)) return 0;
    reference = holdIdOf(body);
    return TIMEOUT_SECONDS * 1000 + 500;
  };
  const first = await buy(system, eventId, key);
  proxy.delayFor = () => 0;
  t.equal(first.status, 503, 'the first attempt answers 503: its hold call timed out');
  t.equal((await getHold(system, reference))?.state, 'HELD', 'its hold was taken at event-service all the same');
  return reference;
}

for (const store of await testStores()) {
  t.test(`a retry racing the reconciler's abandonment of its first attempt claims the ticket again and reserves; the key is never poisoned (${store})`, async (t) => {
    const { system, proxy } = await systemBehindProxy(t, store);
    const event = await createEvent(system, { total_tickets: 10 });
    const key = uuid();
    const reference = await attemptThatTimesOut(t, system, proxy, event.id, key);

    // Make the pending ticket due for abandonment two seconds from now, and hold the retry's hold call
    // until the reconciler has released that reference (it would have by then, had it abandoned the
    // ticket), or until just before the retry's own call budget ends.
    const aged = await system.sql('ticket-service', 'UPDATE tickets SET created_at = ? WHERE reference = ?', new Date(Date.now() - ABANDON_AFTER_MS + 2000).toISOString(), reference);
    t.equal(aged, 1, 'the pending ticket is made almost due for abandonment');
    let releaseSeen: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      releaseSeen = resolve;
    });
    proxy.onForward = (method, path) => {
      if (method === 'POST' && path === `/holds/${reference}/release`) releaseSeen();
    };
    proxy.gateFor = (method, path, body) => {
      if (!isCreateHold(method, path) || holdIdOf(body) !== reference) return undefined;
      return Promise.race([released, new Promise<void>((resolve) => setTimeout(resolve, TIMEOUT_SECONDS * 1000 - 800))]);
    };
    const retried = await buy(system, event.id, key);
    proxy.gateFor = () => undefined;

    t.equal(retried.status, 201, `the retry reserves (answered ${retried.status}: ${JSON.stringify(retried.json)})`);
    const ticket = asTicket(retried.json);
    t.equal(ticket.reference, reference, 'with the first attempt\'s reference: the same hold, claimed again');
    t.equal((await getHold(system, reference))?.state, 'HELD', 'the hold was not released under the retry');
    const replay = await buy(system, event.id, key);
    t.equal(replay.status, 201, 'a later retry replays the reservation');
    t.equal(replay.headers['idempotent-replayed'], 'true');
    t.equal(asTicket(replay.json).id, ticket.id);
    const current = await getEvent(system, event.id);
    t.same([current.available_tickets, current.held_tickets], [8, 2], 'the seats are held once');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });

  t.test(`a retry that meets its own reference released starts over once with a new reference and reserves; the 409 is never stored (${store})`, async (t) => {
    const { system, proxy } = await systemBehindProxy(t, store);
    const event = await createEvent(system, { total_tickets: 10 });
    const key = uuid();
    const reference = await attemptThatTimesOut(t, system, proxy, event.id, key);
    const release = await system.events.call('releaseHold', { path: { hold_id: reference } });
    t.equal(release.ok && release.body.state, 'RELEASED', 'recovery released the first attempt\'s hold');

    const retried = await buy(system, event.id, key);
    t.equal(retried.status, 201, `the retry reserves instead of answering the hold's state (answered ${retried.status})`);
    const ticket = asTicket(retried.json);
    t.not(ticket.reference, reference, 'under a new reference');
    t.equal((await getHold(system, ticket.reference))?.state, 'HELD', 'whose hold is HELD');
    const replay = await buy(system, event.id, key);
    t.equal(replay.status, 201, 'the key now replays the reservation, not a 409');
    t.equal(replay.headers['idempotent-replayed'], 'true');
    t.equal(asTicket(replay.json).reference, ticket.reference);
    const live = (await holdsOf(system, event.id)).filter((hold) => hold.state === 'HELD');
    t.same(live.map((hold) => hold.hold_id), [ticket.reference], 'one live hold: the new reference\'s');
    const current = await getEvent(system, event.id);
    t.same([current.available_tickets, current.held_tickets], [8, 2], 'the seats are held once');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });
}
