/**
 * `POST /holds/batch` (DESIGN.md, holds; issue 16: coalescing the second hop): each item has exactly
 * the outcome and idempotency a `POST /holds` with its body would have had, with the same
 * problem+json; a body that is not a batch is a 400 for the whole request. In-process, on both stores.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { assertSeatInvariant, serviceAuth, startEventApp, type TestEventApp } from './helpers/event-app.js';
import { assertProblem, createHold, holdAction, holdRequest, postEvent, requestHold, type ApiHold, type HoldRequest, type Problem } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

interface BatchResult {
  status: number;
  hold?: ApiHold;
  problem?: Problem;
}

async function holdBatch(app: TestEventApp, holds: unknown[]): Promise<BatchResult[]> {
  const answer = await app.inject({ method: 'POST', url: '/holds/batch', headers: serviceAuth, payload: { holds: holds.map((hold) => ({ hold })) } });
  if (answer.statusCode !== 200) throw new Error(`POST /holds/batch answered ${answer.statusCode}: ${answer.body}`);
  const { results } = answer.json<{ results: BatchResult[] }>();
  if (results.length !== holds.length) throw new Error(`${results.length} results for ${holds.length} holds`);
  return results;
}

/** What a single `POST /holds` answers for this body (sent as given, so that invalid bodies are too). */
async function singleAnswer(app: TestEventApp, body: unknown): Promise<{ status: number; body: unknown }> {
  const answer = await app.inject({ method: 'POST', url: '/holds', headers: { ...serviceAuth, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  return { status: answer.statusCode, body: answer.json() };
}

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('one batch of 8 holds of 1 for 5 seats answers exactly 5 × 201 and 3 × 409 sold-out, and the seats stay exact', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 5 });
      const holds = Array.from({ length: 8 }, () => holdRequest(event.id, 1));
      const results = await holdBatch(app, holds);
      t.equal(results.filter((r) => r.status === 201).length, 5, '5 holds are created');
      t.same(
        results.filter((r) => r.status !== 201).map((r) => [r.status, r.problem?.type, r.problem?.available_tickets]),
        Array.from({ length: 3 }, () => [409, 'urn:eventsync:problem:sold-out', 0]),
        'and 3 are sold out, with the seats left',
      );
      results.forEach((result, index) => {
        if (result.status === 201) t.match(result.hold, { hold_id: holds[index]?.hold_id, state: 'HELD', quantity: 1 }, `item ${index} is its own hold`);
      });
      await assertSeatInvariant(t, app, event.id);
      t.equal((await app.inject({ method: 'GET', url: `/events/${event.id}` })).json<{ available_tickets: number }>().available_tickets, 0);
    });

    t.test('a hold retried inside a batch answers 200 with the same hold, and each refusal is the problem POST /holds answers', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const closed = await postEvent(app, { total_tickets: 10, sales_end: '2020-01-01T00:00:00Z' });
      const retried = holdRequest(event.id, 2);
      const first = await requestHold(app, retried);
      t.equal(first.statusCode, 201);
      const released = await createHold(app, event.id, 1);
      t.equal((await holdAction(app, released.hold_id, 'release')).statusCode, 200);
      const fresh = holdRequest(event.id, 1);
      const refused: HoldRequest[] = [
        { ...retried, quantity: 3 },
        holdRequest(event.id, 1, { hold_id: released.hold_id }),
        holdRequest(987_654, 1),
        holdRequest(closed.id, 1),
      ];
      const [again, created, ...refusals] = await holdBatch(app, [retried, fresh, ...refused]);
      t.same(again, { status: 200, hold: first.json() }, 'the retried hold: 200 with the same hold');
      t.match(created, { status: 201, hold: { hold_id: fresh.hold_id, state: 'HELD' } }, 'beside it a new one is created');
      t.same(
        refusals.map((r) => [r.status, r.problem?.type]),
        [
          [409, 'urn:eventsync:problem:hold-state'],
          [409, 'urn:eventsync:problem:hold-state'],
          [404, 'urn:eventsync:problem:not-found'],
          [409, 'urn:eventsync:problem:sales-closed'],
        ],
        'another quantity, a released id, no such event, sales closed',
      );
      for (const [index, body] of refused.entries()) {
        const single = await singleAnswer(app, body);
        t.same({ status: refusals[index]?.status, body: refusals[index]?.problem }, single, `item ${index + 2}: the same status and problem+json as POST /holds`);
      }
      t.same(await singleAnswer(app, fresh), { status: 200, body: created?.hold }, 'the batch hold is the one POST /holds finds again');
      await assertSeatInvariant(t, app, event.id);
    });
  });
}

t.test("an invalid hold in a batch is that item's 400, with the errors POST /holds gives it; the other holds are taken", async (t) => {
  const app = await startEventApp(t);
  const event = await postEvent(app, { total_tickets: 10 });
  const valid = [holdRequest(event.id, 1), holdRequest(event.id, 2)];
  const invalid: unknown[] = [
    { ...holdRequest(event.id, 0), colour: 'red' },
    { hold_id: randomUUID(), event_id: String(event.id), quantity: 1 },
    { ...holdRequest(event.id, 1), expires_at: '2027-02-30T10:00:00Z' },
    'not a hold',
  ];
  const results = await holdBatch(app, [valid[0], ...invalid, valid[1]]);
  t.same(
    [results[0]?.status, results.at(-1)?.status],
    [201, 201],
    'the valid holds around them are created',
  );
  for (const [index, body] of invalid.entries()) {
    const result = results[index + 1];
    t.equal(result?.status, 400, `item ${index + 1} is a 400`);
    t.same({ status: result?.status, body: result?.problem }, await singleAnswer(app, body), `item ${index + 1}: the same problem+json as POST /holds (${JSON.stringify(result?.problem?.errors)})`);
  }
  await assertSeatInvariant(t, app, event.id);
  t.equal((await app.inject({ method: 'GET', url: `/events/${event.id}` })).json<{ available_tickets: number }>().available_tickets, 7, 'only the valid holds took seats');
});

t.test('a body that is not a batch is a 400 for the whole request, and the batch needs the service token', async (t) => {
  const app = await startEventApp(t);
  const event = await postEvent(app, { total_tickets: 500 });
  const item = () => ({ hold: holdRequest(event.id, 1) });
  const bodies: Array<[string, unknown]> = [
    ['no items', { holds: [] }],
    ['101 items', { holds: Array.from({ length: 101 }, item) }],
    ['an item without its hold', { holds: [item(), { request_id: 'r-1' }] }],
    ['an unknown field beside the hold', { holds: [{ ...item(), priority: 1 }] }],
    ['no holds at all', {}],
  ];
  for (const [what, payload] of bodies) {
    assertProblem(t, await app.inject({ method: 'POST', url: '/holds/batch', headers: serviceAuth, payload: payload as object }), 400, 'validation');
    t.pass(`${what}: 400`);
  }
  assertProblem(t, await app.inject({ method: 'POST', url: '/holds/batch', payload: { holds: [item()] } }), 401, 'unauthorized');
  const hundred = await holdBatch(app, Array.from({ length: 100 }, () => holdRequest(event.id, 1)));
  t.equal(hundred.filter((r) => r.status === 201).length, 100, '100 items are one batch');
  t.equal((await app.inject({ method: 'GET', url: `/events/${event.id}` })).json<{ available_tickets: number }>().available_tickets, 400, 'and only they took seats');
});
