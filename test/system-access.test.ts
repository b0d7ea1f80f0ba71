import t, { type Test } from 'tap';
import { eventServiceClient } from '../openapi/client.js';
import { ADMIN_TOKEN, SERVICE_TOKEN, eventually, startSystem } from './helpers/system.js';
import { asProblem, asTicket, createEvent, getEvent, logsOf, raw, ticketBody, uuid } from './helpers/system-api.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const service = { authorization: `Bearer ${SERVICE_TOKEN}` };

const PAYMENT_TOKEN = 'test-payment-token-0123456789';
const payment = { authorization: `Bearer ${PAYMENT_TOKEN}` };

t.test('with ADMIN_TOKEN set', async (t) => {
  const system = await startSystem(t, { env: { ADMIN_TOKEN, PAYMENT_TOKEN } });
  const adminEvents = eventServiceClient({ baseUrl: system.event.url, token: ADMIN_TOKEN });
  t.teardown(() => adminEvents.close());
  const event = await createEvent(system, { total_tickets: 20 }, adminEvents);
  const ticketUrl = (id: number | string = '') => `${system.ticket.url}/tickets${id === '' ? '' : `/${id}`}`;
  const buy = async (quantity = 1) => {
    const answer = await raw(ticketUrl(), { method: 'POST', body: ticketBody(event.id, quantity) });
    if (answer.status !== 201) throw new Error(`POST /tickets answered ${answer.status}: ${JSON.stringify(answer.json)}`);
    return asTicket(answer.json);
  };
  const expectUnauthorized = (t: Test, answer: { status: number; json: unknown; contentType: string }, what: string) => {
    t.equal(answer.status, 401, `${what} is 401`);
    t.match(answer.contentType, /^application\/problem\+json/);
    t.equal(asProblem(answer.json).type, 'urn:eventsync:problem:unauthorized');
  };

  t.test('POST /tickets stays open to anonymous callers', async (t) => {
    const answer = await raw(ticketUrl(), { method: 'POST', body: ticketBody(event.id, 1) });
    t.equal(answer.status, 201, 'a purchase without any token answers 201');
    t.equal(asTicket(answer.json).status, 'RESERVED');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });

  t.test('reading one ticket needs the admin token or its reference', async (t) => {
    const ticket = await buy(2);
    expectUnauthorized(t, await raw(ticketUrl(ticket.id)), 'GET without a token or reference');
    const byReference = await raw(ticketUrl(ticket.id), { headers: { 'x-ticket-reference': ticket.reference } });
    t.equal(byReference.status, 200, 'GET with the right X-Ticket-Reference answers 200');
    t.equal(asTicket(byReference.json).id, ticket.id);
    expectUnauthorized(t, await raw(ticketUrl(ticket.id), { headers: { 'x-ticket-reference': uuid() } }), 'GET with a wrong reference');
    const other = await buy(1);
    expectUnauthorized(t, await raw(ticketUrl(ticket.id), { headers: { 'x-ticket-reference': other.reference } }), "GET with another ticket's reference");
    const byAdmin = await raw(ticketUrl(ticket.id), { headers: admin });
    t.equal(byAdmin.status, 200, 'GET with the admin token answers 200');
    t.equal(asTicket(byAdmin.json).reference, ticket.reference);
    expectUnauthorized(t, await raw(ticketUrl(ticket.id), { headers: { authorization: 'Bearer not-the-admin-token-at-all' } }), 'GET with a wrong bearer token');
    const missing = await raw(ticketUrl(999_999), { headers: { 'x-ticket-reference': uuid() } });
    t.equal(missing.status, 401, 'a reference for a ticket that does not exist is 401 too (ids are not probed)');
  });

  t.test('changing a ticket status needs the admin token or its reference', async (t) => {
    const ticket = await buy(2);
    const cancelBody = { status: 'CANCELLED' };
    expectUnauthorized(t, await raw(ticketUrl(`${ticket.id}/status`), { method: 'PUT', body: cancelBody }), 'PUT status without a token or reference');
    expectUnauthorized(t, await raw(ticketUrl(`${ticket.id}/status`), { method: 'PUT', body: cancelBody, headers: { 'x-ticket-reference': uuid() } }), 'PUT status with a wrong reference');
    expectUnauthorized(t, await raw(ticketUrl(`${ticket.id}/status`), { method: 'PUT', body: { status: 'CONFIRMED' } }), 'a confirm without any credential');
    t.equal(asTicket((await raw(ticketUrl(ticket.id), { headers: admin })).json).status, 'RESERVED', 'the refused calls changed nothing');
    const adminReason = await raw(ticketUrl(`${ticket.id}/status`), { method: 'PUT', body: { status: 'CANCELLED', cancellation_reason: 'admin' }, headers: { 'x-ticket-reference': ticket.reference } });
    t.equal(adminReason.status, 403, 'the reference holder cannot cancel with reason admin');
    const cancel = await raw(ticketUrl(`${ticket.id}/status`), { method: 'PUT', body: { status: 'CANCELLED' }, headers: { 'x-ticket-reference': ticket.reference } });
    t.equal(cancel.status, 200, 'the reference holder cancels');
    t.equal(asTicket(cancel.json).cancellation_reason, 'customer', 'with reason customer');

    const second = await buy(1);
    const byAdmin = await raw(ticketUrl(`${second.id}/status`), { method: 'PUT', body: { status: 'CANCELLED' }, headers: admin });
    t.equal(byAdmin.status, 200, 'PUT status with the admin token answers 200');
    t.equal(asTicket(byAdmin.json).cancellation_reason, 'admin', 'an admin cancel has reason admin');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });

  t.test("a customer's reference may read and cancel a ticket but never confirm it: CONFIRMED needs the admin token or PAYMENT_TOKEN", async (t) => {
    const ticket = await buy(2);
    const statusUrl = ticketUrl(`${ticket.id}/status`);
    const paid = { status: 'CONFIRMED', payment_reference: 'pay_self_made' };
    const byReference = await raw(statusUrl, { method: 'PUT', body: paid, headers: { 'x-ticket-reference': ticket.reference } });
    t.equal(byReference.status, 403, "a confirm with the ticket's reference is 403");
    t.match(byReference.contentType, /^application\/problem\+json/);
    t.equal(asProblem(byReference.json).type, 'urn:eventsync:problem:forbidden');
    const read = await raw(ticketUrl(ticket.id), { headers: { 'x-ticket-reference': ticket.reference } });
    t.equal(asTicket(read.json).status, 'RESERVED', 'the ticket is still RESERVED');
    t.equal(asTicket(read.json).payment_reference, null, 'with no payment reference recorded');
    t.equal((await getEvent(system, event.id)).sold_tickets, 0, 'and nothing was sold');

    const byPayment = await raw(statusUrl, { method: 'PUT', body: paid, headers: payment });
    t.equal(byPayment.status, 200, 'PAYMENT_TOKEN confirms');
    t.equal(asTicket(byPayment.json).status, 'CONFIRMED');
    t.equal(asTicket(byPayment.json).payment_reference, 'pay_self_made', 'with its payment reference');
    const readByPayment = await raw(ticketUrl(ticket.id), { headers: payment });
    t.equal(readByPayment.status, 200, 'PAYMENT_TOKEN may read the ticket');
    const listByPayment = await raw(`${ticketUrl()}?event_id=${event.id}`, { headers: payment });
    t.equal(listByPayment.status, 403, 'but not list tickets: it grants confirming, not administration');

    const second = await buy(1);
    const byAdmin = await raw(ticketUrl(`${second.id}/status`), { method: 'PUT', body: { status: 'CONFIRMED' }, headers: admin });
    t.equal(byAdmin.status, 200, 'the admin token confirms');
    t.equal(asTicket(byAdmin.json).status, 'CONFIRMED');
    const third = await buy(1);
    const cancelled = await raw(ticketUrl(`${third.id}/status`), { method: 'PUT', body: { status: 'CANCELLED' }, headers: { 'x-ticket-reference': third.reference } });
    t.equal(asTicket(cancelled.json).status, 'CANCELLED', 'the reference still cancels');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });

  t.test('the ticket list and ticket deletion need the admin token', async (t) => {
    const ticket = await buy(1);
    expectUnauthorized(t, await raw(`${ticketUrl()}?event_id=${event.id}`), 'GET /tickets without a token');
    expectUnauthorized(t, await raw(`${ticketUrl()}?event_id=${event.id}`, { headers: { 'x-ticket-reference': ticket.reference } }), 'GET /tickets with only a reference');
    const listed = await raw(`${ticketUrl()}?event_id=${event.id}`, { headers: admin });
    t.equal(listed.status, 200, 'GET /tickets with the admin token answers 200');
    t.ok(Array.isArray(listed.json) && Number(listed.headers['x-total-count']) >= 1, 'with the tickets and X-Total-Count');

    expectUnauthorized(t, await raw(ticketUrl(ticket.id), { method: 'DELETE' }), 'DELETE without a token');
    expectUnauthorized(t, await raw(ticketUrl(ticket.id), { method: 'DELETE', headers: { 'x-ticket-reference': ticket.reference } }), 'DELETE with only the reference');
    t.equal((await raw(ticketUrl(ticket.id), { headers: admin })).status, 200, 'the refused deletes kept the ticket');
    const deleted = await raw(ticketUrl(ticket.id), { method: 'DELETE', headers: admin });
    t.equal(deleted.status, 204, 'DELETE with the admin token answers 204');
    t.equal((await raw(ticketUrl(ticket.id), { headers: admin })).status, 404, 'the ticket is gone');
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });

  t.test('writes to events need the admin token', async (t) => {
    const body = { name: 'Not allowed', event_date: '2030-01-01T10:00:00Z', total_tickets: 5 };
    expectUnauthorized(t, await raw(`${system.event.url}/events`, { method: 'POST', body }), 'POST /events without a token');
    const withService = await raw(`${system.event.url}/events`, { method: 'POST', body, headers: service });
    t.equal(withService.status, 403, 'POST /events with the service token is 403');
    expectUnauthorized(t, await raw(`${system.event.url}/events/${event.id}`, { method: 'PUT', body: { total_tickets: 1000 } }), 'PUT /events/{id} without a token');
    expectUnauthorized(t, await raw(`${system.event.url}/events/${event.id}`, { method: 'DELETE' }), 'DELETE /events/{id} without a token');
    expectUnauthorized(t, await raw(`${system.event.url}/holds?event_id=${event.id}`), 'GET /holds without a token');
    const unchanged = await getEvent(system, event.id);
    t.equal(unchanged.total_tickets, 20, 'the refused update changed nothing');
    t.equal((await raw(`${system.event.url}/events/${event.id}`)).status, 200, 'reading events stays open');
    const created = await raw(`${system.event.url}/events`, { method: 'POST', body, headers: admin });
    t.equal(created.status, 201, 'POST /events with the admin token answers 201');
    t.equal((await raw(`${system.event.url}/holds?event_id=${event.id}`, { headers: admin })).status, 200, 'the holds list accepts the admin token');
  });

  t.test('the x-request-id of a purchase is forwarded to event-service and appears in its log', async (t) => {
    const requestId = `purchase-${uuid()}`;
    const answer = await raw(ticketUrl(), { method: 'POST', body: ticketBody(event.id, 1), headers: { 'x-request-id': requestId } });
    t.equal(answer.status, 201);
    t.equal(answer.headers['x-request-id'], requestId, 'ticket-service answers with the same request id');
    const logged = await eventually(async () => logsOf(system, 'event-service').includes(requestId), 5_000);
    t.ok(logged, "event-service's log output contains the request id");
    t.ok(logsOf(system, 'ticket-service').includes(requestId), "and so does ticket-service's");
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });
});

t.test('without ADMIN_TOKEN the original calls need no token', async (t) => {
  const system = await startSystem(t);
  const event = await createEvent(system, { total_tickets: 10 });
  const created = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 2) });
  t.equal(created.status, 201);
  t.equal(asTicket(created.json).id, 1, 'the first ticket on a fresh system is 1');
  const read = await raw(`${system.ticket.url}/tickets/1`);
  t.equal(read.status, 200, 'GET /tickets/1 works without any token');
  t.equal(asTicket(read.json).reference, asTicket(created.json).reference);
  t.equal((await raw(`${system.ticket.url}/tickets`)).status, 200, 'GET /tickets works without any token');
  t.equal((await raw(`${system.ticket.url}/tickets/1/status`, { method: 'PUT', body: { status: 'CONFIRMED' } })).status, 200, 'PUT status works without any token');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});
