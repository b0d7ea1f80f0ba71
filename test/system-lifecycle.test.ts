import t from 'tap';
import { nextCursor } from '../openapi/client.js';
import { testStores } from './helpers/postgres.js';
import { eventually, startSystem } from './helpers/system.js';
import { asProblem, createEvent, getEvent, getHold, holdsOf, raw, reserve, sleep, ticketBody, ticketsOf, whileFrozen } from './helpers/system-api.js';

for (const store of await testStores()) {
  t.test(`a RESERVED ticket past its TTL is cancelled by the sweeper with reason expired and its seats return (${store})`, async (t) => {
    const system = await startSystem(t, { store, env: { RESERVATION_TTL_SECONDS: '1' } });
    const event = await createEvent(system, { total_tickets: 10 });
    const ticket = await reserve(system, event.id, 2);
    t.equal(ticket.status, 'RESERVED');
    t.ok(ticket.expires_at !== null, 'a RESERVED ticket has an expires_at');
    const ttlMs = Date.parse(ticket.expires_at ?? '') - Date.parse(ticket.created_at);
    t.ok(ttlMs >= 1000 && ttlMs <= 2000, `expires_at is created_at + RESERVATION_TTL_SECONDS, rounded up to the whole second (${ttlMs} ms)`);
    t.equal((await getEvent(system, event.id)).held_tickets, 2, 'two seats are held');

    const swept = await eventually(async () => {
      const read = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      return read.ok && read.body.status === 'CANCELLED';
    }, 10_000);
    t.ok(swept, 'the sweeper cancels the reservation');
    const read = await system.tickets.call('getTicket', { path: { id: ticket.id } });
    t.equal(read.ok && read.body.cancellation_reason, 'expired', 'with cancellation_reason expired');
    t.equal(read.ok && read.body.expires_at, null, 'a CANCELLED ticket has no expires_at');
    t.ok(read.ok && Date.parse(read.body.updated_at) >= Date.parse(ticket.expires_at ?? ''), 'not before expires_at');
    // The sweeper answers nobody: its release follows the local cancel (at once, or through the outbox).
    t.ok(await eventually(async () => (await getHold(system, ticket.reference))?.state === 'RELEASED', 10_000), 'the hold is released after the cancel');
    const current = await getEvent(system, event.id);
    t.equal(current.held_tickets, 0, 'no seat is held any more');
    t.equal(current.available_tickets, 10, 'the seats are back on sale');
    t.equal((await getHold(system, ticket.reference))?.state, 'RELEASED', 'its hold is RELEASED');
    const confirm = await system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CONFIRMED' } });
    t.equal(confirm.status, 409, 'a confirm after the sweep is refused');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });

  // A 2 s TTL and a sweeper that never runs after start-up: only a confirm can notice an expiry.
  t.test(`with a 2 s reservation TTL and no sweeper (${store})`, async (t) => {
    const system = await startSystem(t, { store, env: { RESERVATION_TTL_SECONDS: '2', SWEEP_INTERVAL_SECONDS: '3600', EVENT_SERVICE_TIMEOUT_SECONDS: '1' } });

    t.test('a confirm after expires_at is 409 reservation-expired even before the sweeper ran, and the seats come back', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const ticket = await reserve(system, event.id, 3);
      const other = await reserve(system, event.id, 1);
      t.equal((await getEvent(system, event.id)).held_tickets, 4, 'four seats are held');
      // The API gives expires_at to the second; wait until it has passed by more than a second, whatever the milliseconds.
      await sleep(Math.max(0, Date.parse(ticket.expires_at ?? '') - Date.now()) + 1200);
      const stillReserved = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.equal(stillReserved.ok && stillReserved.body.status, 'RESERVED', 'no sweeper ran: the ticket is still RESERVED past expires_at');

      const confirm = await raw(`${system.ticket.url}/tickets/${ticket.id}/status`, { method: 'PUT', body: { status: 'CONFIRMED', payment_reference: 'pay_late' } });
      t.equal(confirm.status, 409, 'the late confirm answers 409');
      t.match(confirm.contentType, /^application\/problem\+json/);
      t.equal(asProblem(confirm.json).type, 'urn:eventsync:problem:reservation-expired', 'of type reservation-expired');

      const read = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.equal(read.ok && read.body.status, 'CANCELLED', 'the ticket is CANCELLED');
      t.equal(read.ok && read.body.cancellation_reason, 'expired', 'with reason expired');
      t.equal(read.ok && read.body.payment_reference, null, 'and no payment reference was stored');
      const current = await getEvent(system, event.id);
      t.equal(current.held_tickets, 1, 'its three seats are no longer held');
      t.equal(current.sold_tickets, 0, 'nothing was sold');
      t.equal(current.available_tickets, 9, 'they are back on sale');
      t.equal((await getHold(system, ticket.reference))?.state, 'RELEASED', 'its hold is RELEASED');
      t.equal((await getHold(system, other.reference))?.state, 'HELD', 'the other reservation is untouched (no sweeper ran)');

      const cancelOther = await system.tickets.call('updateTicketStatus', { path: { id: other.id }, body: { status: 'CANCELLED' } });
      t.equal(cancelOther.status, 200, 'cancelling an expired reservation still works');
      t.equal((await getEvent(system, event.id)).held_tickets, 0, 'and returns its seat');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('the expires_at a reservation shows is the one enforced: a confirm after it is 409', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      // Buy in the second half of a second, so the shown (whole-second) expires_at and the real one differ by about half a second.
      for (let waited = 0; Date.now() % 1000 < 500 || Date.now() % 1000 > 650; waited += 5) {
        if (waited > 2000) break;
        await sleep(5);
      }
      const ticket = await reserve(system, event.id, 1);
      const shown = Date.parse(ticket.expires_at ?? '');
      await sleep(Math.max(0, shown - Date.now()) + 100);
      t.ok(Date.now() > shown, 'the shown expires_at has passed');
      const confirm = await system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CONFIRMED' } });
      t.equal(confirm.status, 409, 'a confirm after the shown expires_at is refused');
      t.equal(confirm.ok ? undefined : confirm.problem.type, 'urn:eventsync:problem:reservation-expired');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });
    // Freezing event-service is about the process, not the store.
    if (store === 'sqlite') {
      t.test('a confirm retried after expires_at, whose timed-out first attempt committed the hold, confirms the ticket', async (t) => {
        const event = await createEvent(system, { total_tickets: 10 });
        const ticket = await reserve(system, event.id, 2);
        const first = await whileFrozen(system, 'event-service', () => system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CONFIRMED' } }));
        t.equal(first.status, 503, 'the first confirm times out: "the ticket keeps its status and a retry is safe"');
        const committed = await eventually(async () => (await getHold(system, ticket.reference))?.state === 'COMMITTED', 5_000);
        t.ok(committed, 'its commit reached event-service late: the seats are sold');
        await sleep(Math.max(0, Date.parse(ticket.expires_at ?? '') - Date.now()) + 1200);
        const retry = await system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CONFIRMED' } });
        t.equal(retry.status, 200, 'the retry confirms the ticket');
        t.equal(retry.ok && retry.body.status, 'CONFIRMED');
        const current = await getEvent(system, event.id);
        t.equal(current.sold_tickets, 2, 'the seats stay sold');
        t.same(await system.audit(), [], 'the invariant holds across both services');
      });
    }
  });

  // One system with the default TTL for the rest; each test uses its own event.
  t.test(`status changes, deletion, prices and purchase validation (${store})`, async (t) => {
    const system = await startSystem(t, { store });
    const setStatus = (id: number, status: 'RESERVED' | 'CONFIRMED' | 'CANCELLED', extra: { payment_reference?: string } = {}) =>
      system.tickets.call('updateTicketStatus', { path: { id }, body: { status, ...extra } });

    t.test('illegal transitions get 409 invalid-transition listing the allowed ones, and change nothing', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const ticket = await reserve(system, event.id, 2);
      t.equal((await setStatus(ticket.id, 'CONFIRMED')).status, 200);

      const back = await setStatus(ticket.id, 'RESERVED');
      t.equal(back.status, 409, 'CONFIRMED → RESERVED is 409');
      t.equal(back.ok ? undefined : back.problem.type, 'urn:eventsync:problem:invalid-transition');
      t.same(back.ok ? undefined : back.problem.allowed_transitions, ['CANCELLED'], 'allowed_transitions is [CANCELLED]');
      const afterRefusal = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.equal(afterRefusal.ok && afterRefusal.body.status, 'CONFIRMED', 'the ticket stays CONFIRMED');
      t.equal((await getEvent(system, event.id)).sold_tickets, 2, 'its seats stay sold');

      t.equal((await setStatus(ticket.id, 'CANCELLED')).status, 200, 'CONFIRMED → CANCELLED is allowed');
      for (const target of ['CONFIRMED', 'RESERVED'] as const) {
        const leave = await setStatus(ticket.id, target);
        t.equal(leave.status, 409, `CANCELLED → ${target} is 409`);
        t.equal(leave.ok ? undefined : leave.problem.type, 'urn:eventsync:problem:invalid-transition');
        t.same(leave.ok ? undefined : leave.problem.allowed_transitions, [], 'allowed_transitions is []');
      }
      const final = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.equal(final.ok && final.body.status, 'CANCELLED', 'the ticket stays CANCELLED');
      const current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets, current.sold_tickets], [10, 0, 0], 'no seat came back into use');
      t.equal((await getHold(system, ticket.reference))?.state, 'RELEASED', 'the hold stays RELEASED');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('setting the current status again is a no-op 200', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const ticket = await reserve(system, event.id, 2);
      await sleep(20);
      const again = await setStatus(ticket.id, 'RESERVED');
      t.equal(again.status, 200, 'RESERVED → RESERVED answers 200');
      t.equal(again.ok && again.body.status, 'RESERVED');
      t.equal(again.ok && again.body.updated_at, ticket.updated_at, 'nothing changed');
      t.equal((await getEvent(system, event.id)).held_tickets, 2, 'the seats are still held, once');

      const confirmed = await setStatus(ticket.id, 'CONFIRMED', { payment_reference: 'pay_first' });
      t.equal(confirmed.status, 200);
      const confirmedAgain = await setStatus(ticket.id, 'CONFIRMED', { payment_reference: 'pay_second' });
      t.equal(confirmedAgain.status, 200, 'CONFIRMED → CONFIRMED answers 200');
      t.equal(confirmedAgain.ok && confirmedAgain.body.status, 'CONFIRMED');
      t.equal(confirmedAgain.ok && confirmedAgain.body.payment_reference, 'pay_first', 'the no-op keeps the first payment reference');
      t.equal(confirmedAgain.ok && confirmedAgain.body.updated_at, confirmed.ok && confirmed.body.updated_at, 'nothing changed');
      const current = await getEvent(system, event.id);
      t.same([current.held_tickets, current.sold_tickets, current.available_tickets], [0, 2, 8], 'the seats are sold once');
      t.equal((await getHold(system, ticket.reference))?.state, 'COMMITTED');

      t.equal((await setStatus(ticket.id, 'CANCELLED')).status, 200);
      const cancelledAgain = await setStatus(ticket.id, 'CANCELLED');
      t.equal(cancelledAgain.status, 200, 'CANCELLED → CANCELLED answers 200');
      t.equal(cancelledAgain.ok && cancelledAgain.body.cancellation_reason, 'customer');
      t.equal((await getEvent(system, event.id)).available_tickets, 10, 'the seats came back once');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('confirming with a payment_reference stores it', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const ticket = await reserve(system, event.id, 1);
      t.equal(ticket.payment_reference, null, 'a reservation has no payment reference');
      const confirmed = await setStatus(ticket.id, 'CONFIRMED', { payment_reference: 'pay_8f2k1' });
      t.equal(confirmed.status, 200);
      t.equal(confirmed.ok && confirmed.body.payment_reference, 'pay_8f2k1', 'the answer has it');
      t.equal(confirmed.ok && confirmed.body.expires_at, null, 'a CONFIRMED ticket has no expires_at');
      const read = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.equal(read.ok && read.body.payment_reference, 'pay_8f2k1', 'a later read has it');
      const listed = await ticketsOf(system, event.id);
      t.equal(listed.tickets[0]?.payment_reference, 'pay_8f2k1', 'the list has it');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('a price change on the event after the purchase does not change the ticket', async (t) => {
      const event = await createEvent(system, { total_tickets: 10, ticket_price: 2500, currency: 'EUR' });
      const ticket = await reserve(system, event.id, 2);
      t.same([ticket.unit_price, ticket.total_price, ticket.currency], [2500, 5000, 'EUR'], 'the price is fixed at reservation');
      const changed = await system.events.call('updateEvent', { path: { id: event.id }, body: { ticket_price: 9900 } });
      t.equal(changed.status, 200, 'the event price is changed');
      t.equal(changed.ok && changed.body.ticket_price, 9900);

      const read = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.same(read.ok && [read.body.unit_price, read.body.total_price, read.body.currency], [2500, 5000, 'EUR'], 'the reserved ticket keeps its price');
      const confirmed = await setStatus(ticket.id, 'CONFIRMED');
      t.same(confirmed.ok && [confirmed.body.unit_price, confirmed.body.total_price], [2500, 5000], 'confirming does not reprice it');
      const readAgain = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.same(readAgain.ok && [readAgain.body.unit_price, readAgain.body.total_price], [2500, 5000], 'nor does a later read');
      const newer = await reserve(system, event.id, 2);
      t.same([newer.unit_price, newer.total_price], [9900, 19800], 'a new purchase pays the new price');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('a price beyond 32 bits (10^10 minor units) is kept exactly, and so is its total', async (t) => {
      const event = await createEvent(system, { total_tickets: 10, ticket_price: 10_000_000_000, currency: 'JPY' });
      const ticket = await reserve(system, event.id, 3);
      t.same([ticket.unit_price, ticket.total_price, ticket.currency], [10_000_000_000, 30_000_000_000, 'JPY'], 'the reservation answers the exact amounts, as numbers');
      const read = await system.tickets.call('getTicket', { path: { id: ticket.id } });
      t.same(read.ok && [read.body.unit_price, read.body.total_price], [10_000_000_000, 30_000_000_000], 'a later read gives them back the same');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('GET /tickets lists in id order (oldest first), follows Link pages and counts with X-Total-Count', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const bought = [];
      for (let i = 0; i < 5; i += 1) bought.push(await reserve(system, event.id, 1));
      const cancelled = bought[1];
      if (cancelled) t.equal((await setStatus(cancelled.id, 'CANCELLED')).status, 200);
      const seen: number[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page += 1) {
        const result = await system.tickets.call('listTickets', { query: { event_id: event.id, limit: 2, ...(cursor ? { cursor } : {}) } });
        if (!result.ok) throw new Error(`listing answered ${result.status}`);
        t.equal(result.headers['x-total-count'], '5', `page ${page + 1} says X-Total-Count 5`);
        t.ok(result.body.length <= 2, 'at most limit tickets per page');
        t.ok(result.body.every((ticket) => ticket.event?.name === event.name), 'each ticket has its event summary');
        seen.push(...result.body.map((ticket) => ticket.id));
        cursor = nextCursor(result.headers);
        if (!cursor) break;
      }
      t.same([...seen].sort((a, b) => a - b), bought.map((ticket) => ticket.id), 'the pages hold every ticket once, CANCELLED included');
      t.same(seen, bought.map((ticket) => ticket.id), 'in id order');
      const reserved = await system.tickets.call('listTickets', { query: { event_id: event.id, status: 'RESERVED' } });
      t.equal(reserved.ok && reserved.headers['x-total-count'], '4', 'the status filter counts only RESERVED tickets');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    t.test('DELETE /tickets/{id} releases its seats and the ticket is gone', async (t) => {
      const event = await createEvent(system, { total_tickets: 10 });
      const reserved = await reserve(system, event.id, 3);
      const confirmedTicket = await reserve(system, event.id, 2);
      const confirm = await system.tickets.call('updateTicketStatus', { path: { id: confirmedTicket.id }, body: { status: 'CONFIRMED' } });
      t.equal(confirm.status, 200);
      const before = await getEvent(system, event.id);
      t.same([before.available_tickets, before.held_tickets, before.sold_tickets], [5, 3, 2], 'five seats taken before the deletes');

      const deleted = await system.tickets.call('deleteTicket', { path: { id: reserved.id } });
      t.equal(deleted.status, 204, 'deleting a RESERVED ticket answers 204');
      let current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets, current.sold_tickets], [8, 0, 2], 'its held seats are back when the answer goes out');
      const gone = await system.tickets.call('getTicket', { path: { id: reserved.id } });
      t.equal(gone.status, 404, 'the ticket is gone');
      t.equal(gone.ok ? undefined : gone.problem.type, 'urn:eventsync:problem:not-found');
      t.equal((await getHold(system, reserved.reference))?.state, 'RELEASED', 'its hold is RELEASED');

      const deletedSold = await system.tickets.call('deleteTicket', { path: { id: confirmedTicket.id } });
      t.equal(deletedSold.status, 204, 'deleting a CONFIRMED ticket answers 204');
      current = await getEvent(system, event.id);
      t.same([current.available_tickets, current.held_tickets, current.sold_tickets], [10, 0, 0], 'its sold seats are back too');
      t.equal((await system.tickets.call('deleteTicket', { path: { id: confirmedTicket.id } })).status, 404, 'deleting it again is 404');
      t.equal((await ticketsOf(system, event.id)).total, 0, 'the list has no ticket for the event');

      const next = await reserve(system, event.id, 1);
      t.ok(next.id > confirmedTicket.id, 'ids of deleted tickets are not reused');
      t.same(await system.audit(), [], 'the invariant holds across both services');
    });

    // Refusals decided before anything is written, and the HTTP shape of bad input: the store adds nothing.
    if (store === 'sqlite') {
      t.test('a quantity above MAX_TICKETS_PER_ORDER is 400 naming #/quantity and holds nothing', async (t) => {
        const event = await createEvent(system, { total_tickets: 50 });
        const tooMany = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 11) });
        t.equal(tooMany.status, 400);
        t.match(tooMany.contentType, /^application\/problem\+json/);
        const problem = asProblem(tooMany.json);
        t.equal(problem.type, 'urn:eventsync:problem:validation');
        t.same(problem.errors?.map((e) => e.pointer), ['#/quantity'], 'the error names #/quantity');
        const current = await getEvent(system, event.id);
        t.same([current.available_tickets, current.held_tickets], [50, 0], 'nothing is held');
        t.same(await holdsOf(system, event.id), [], 'no hold was asked for');
        t.equal((await ticketsOf(system, event.id)).total, 0, 'no ticket exists');
        const most = await reserve(system, event.id, 10);
        t.equal(most.quantity, 10, 'exactly MAX_TICKETS_PER_ORDER is accepted');
        t.same(await system.audit(), [], 'the invariant holds across both services');
      });

      t.test('a purchase for a missing event is 404 and leaves nothing held', async (t) => {
        const missing = 987_654;
        const answer = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(missing, 2) });
        t.equal(answer.status, 404);
        t.match(answer.contentType, /^application\/problem\+json/);
        t.equal(asProblem(answer.json).type, 'urn:eventsync:problem:not-found');
        t.same(await holdsOf(system, missing), [], 'no hold exists for it');
        t.equal((await ticketsOf(system, missing)).total, 0, 'no ticket is listed for it');
        const held = await system.events.call('listHolds', { query: { state: 'HELD' } });
        t.same(held.ok && held.body.filter((h) => h.event_id === missing), [], 'nothing is HELD anywhere for it');
        t.same(await system.audit(), [], 'the invariant holds across both services');
      });

      t.test('a purchase outside the sales window is 409 sales-closed and holds nothing', async (t) => {
        const event = await createEvent(system, { total_tickets: 10, sales_start: '2020-01-01T00:00:00Z', sales_end: '2020-02-01T00:00:00Z' });
        const answer = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1) });
        t.equal(answer.status, 409);
        t.equal(asProblem(answer.json).type, 'urn:eventsync:problem:sales-closed');
        const current = await getEvent(system, event.id);
        t.same([current.available_tickets, current.held_tickets], [10, 0], 'nothing is held');
        t.equal((await ticketsOf(system, event.id)).total, 0, 'no ticket exists');
        t.same(await system.audit(), [], 'the invariant holds across both services');
      });

      t.test('invalid purchase bodies are 400 listing every invalid field, and create nothing', async (t) => {
        const event = await createEvent(system, { total_tickets: 10 });
        const answer = await raw(`${system.ticket.url}/tickets`, {
          method: 'POST',
          body: { event_id: event.id, customer_name: 'Ada Lovelace', quantity: '2', seat: 'A1' },
        });
        t.equal(answer.status, 400);
        t.match(answer.contentType, /^application\/problem\+json/);
        const problem = asProblem(answer.json);
        t.equal(problem.type, 'urn:eventsync:problem:validation');
        t.same(problem.errors?.map((e) => e.pointer).sort(), ['#/customer_email', '#/quantity', '#/seat'], 'quantity as a string, the unknown field and the missing email are all listed');
        t.notMatch(JSON.stringify(problem), /at .*\.js|SELECT|sqlite/i, 'no stack trace or SQL');

        const stringId = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: { ...ticketBody(event.id, 1), event_id: String(event.id) } });
        t.equal(stringId.status, 400, 'an event_id sent as a string is 400 too (no coercion)');
        t.same(asProblem(stringId.json).errors?.map((e) => e.pointer), ['#/event_id']);

        const notJson = await raw(`${system.ticket.url}/tickets`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'event_id=1' });
        t.equal(notJson.status, 415, 'a body that is not JSON is 415');
        const broken = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: '{"event_id": 1,' });
        t.equal(broken.status, 400, 'malformed JSON is 400');
        t.equal(asProblem(broken.json).type, 'urn:eventsync:problem:malformed-body');

        const current = await getEvent(system, event.id);
        t.same([current.available_tickets, current.held_tickets], [10, 0], 'nothing is held');
        t.equal((await ticketsOf(system, event.id)).total, 0, 'no ticket exists');
        t.same(await system.audit(), [], 'the invariant holds across both services');
      });
    }
  });
}
