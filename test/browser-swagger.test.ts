import { randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import { startSystem, type TestSystem } from './helpers/system.js';
import { chromiumAvailable, freePortPair, launchBrowser, openPage, parseShownJson, SwaggerUiPage } from './helpers/browser.js';

/**
 * The web console is Swagger UI at /docs on each service. These tests drive it in real Chromium
 * against both services running as real processes, the way a person at the page would; every step
 * leaves a screenshot in test-artifacts/. One system and one browser serve all tests (each test
 * has its own tab and its own event), which saves two process starts per test.
 */

const skip = chromiumAvailable(t) ? false : 'no Chromium (see the message above)';
// A real browser over a page this size is slow on a busy machine: more than tap's default per file.
t.setTimeout(360_000);

async function availableSeats(system: TestSystem, id: number): Promise<number | undefined> {
  const result = await system.events.call('getEvent', { path: { id } });
  return result.ok ? result.body.available_tickets : undefined;
}

/** A word no other event has, so that a search finds exactly the event made here. */
function uniqueWord(): string {
  return `gala${randomBytes(4).toString('hex')}`;
}

async function createEventThroughClient(system: TestSystem, name: string, totalTickets: number): Promise<{ id: number; name: string }> {
  const made = await system.events.call('createEvent', { body: { name, event_date: '2027-03-20T19:30:00Z', venue: 'Convention Center', total_tickets: totalTickets } });
  if (!made.ok) throw new Error(`could not create the event through the typed client: ${JSON.stringify(made.problem)}`);
  return { id: made.body.id, name: made.body.name };
}

function idOf(value: Record<string, unknown> | unknown[] | undefined): number | undefined {
  return value && !Array.isArray(value) && typeof value.id === 'number' ? value.id : undefined;
}

/** A status as a file-name part: "201", or "failed-to-fetch"-like text when the browser got no answer. */
function screenshotStatus(statusText: string): string {
  return statusText.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'no-status';
}





t.test('the Swagger UI pages of both services in Chromium', { skip }, async (t) => {
  // Fixed free ports: the default CORS origins and the ticket page's link to the event spec are
  // computed from EVENT_SERVICE_PORT / TICKET_SERVICE_PORT, so port 0 would not do.
  const [eventPort, ticketPort] = await freePortPair();
  const system = await startSystem(t, { env: { EVENT_SERVICE_PORT: String(eventPort), TICKET_SERVICE_PORT: String(ticketPort) } });
  const browser = await launchBrowser(t);

  t.test('opening / on either service lands on its Swagger UI at /docs with its operations, and the ticket-service page switches to the event-service spec', async (t) => {
    const tab = await openPage(t, browser, 'browser-docs');
    const swagger = new SwaggerUiPage(tab.page);

    await swagger.open(`${system.event.url}/`);
    t.equal(tab.page.url(), `${system.event.url}/docs`, 'event-service / redirects to /docs');
    t.match(await swagger.title(), /event-service/, 'the page title names event-service');
    t.match(await swagger.specTitle(), /^EventSync event-service\b/);
    const eventOperations = await swagger.operationIds();
    for (const id of ['listEvents', 'createEvent', 'getEvent', 'updateEvent', 'deleteEvent', 'listVenues', 'createHold']) t.ok(eventOperations.includes(id), `the event-service page lists ${id}`);
    t.ok(await swagger.operation('Events', 'createEvent').isVisible(), 'createEvent is shown under Events');
    t.ok(await swagger.operation('Holds (internal)', 'createHold').isVisible(), 'the holds are shown under their own tag');
    await tab.screenshot('event-service-docs');

    await swagger.open(`${system.ticket.url}/`);
    t.equal(tab.page.url(), `${system.ticket.url}/docs`, 'ticket-service / redirects to /docs');
    t.match(await swagger.title(), /ticket-service/, 'the page title names ticket-service');
    t.match(await swagger.specTitle(), /^EventSync ticket-service\b/);
    const ticketOperations = await swagger.operationIds();
    for (const id of ['listTickets', 'createTicket', 'getTicket', 'updateTicketStatus', 'deleteTicket']) t.ok(ticketOperations.includes(id), `the ticket-service page lists ${id}`);
    t.notOk(ticketOperations.includes('createEvent'), 'the ticket-service page starts on its own spec');
    t.same(await swagger.specNames(), ['ticket-service', 'event-service'], 'the top-bar selector offers both specs, its own first');
    await tab.screenshot('ticket-service-docs');

    await swagger.selectSpec('event-service', swagger.operation('Events', 'listEvents'));
    t.match(await swagger.specTitle(), /^EventSync event-service\b/, 'the selector switched the page to the event-service spec');
    const switched = await swagger.operationIds();
    for (const id of ['listEvents', 'createEvent', 'getEvent']) t.ok(switched.includes(id), `after switching, the page lists ${id}`);
    t.notOk(switched.includes('createTicket'), 'ticket operations are gone after switching');
    await tab.screenshot('ticket-service-docs-switched-to-event-service');

    t.same(tab.externalRequests, [], 'the pages load nothing from outside the two services');
    t.same(tab.pageErrors, [], 'no errors in the page');
  });

  t.test('through Try it out a visitor creates an event, finds it, buys two tickets, confirms and cancels them, and availability follows (8, 8, 10)', async (t) => {
    const tab = await openPage(t, browser, 'browser-purchase');
    const swagger = new SwaggerUiPage(tab.page);
    const word = uniqueWord();
    const name = `Swagger Gala ${word}`;

    await swagger.open(`${system.event.url}/docs`);
    const createEvent = await swagger.tryItOut('Events', 'createEvent');
    const example = parseShownJson(t, await swagger.requestBodyText(createEvent), 'createEvent example');
    t.match(example, { name: 'Tech Conference 2025', total_tickets: 200 }, 'the body is pre-filled with the original API example');
    await swagger.fillRequestBody(createEvent, JSON.stringify({ ...example, name, total_tickets: 10 }, null, 2));
    const created = await swagger.execute(createEvent);
    await tab.screenshot('create-event-201', swagger.liveResponse(createEvent));
    t.equal(created.status, 201, 'createEvent: the page shows 201', { body: created.body, pageErrors: tab.pageErrors });
    const event = parseShownJson(t, created.body, 'createEvent response');
    t.match(event, { name, total_tickets: 10, available_tickets: 10, event_date: '2025-06-15T09:00:00Z' }, 'the page shows the new event');
    const eventId = idOf(event);
    if (eventId === undefined) return t.fail('the page shows no id for the created event');

    const listEvents = await swagger.tryItOut('Events', 'listEvents');
    const prefilled = await swagger.filledParameters(listEvents);
    t.same(Object.keys(prefilled).filter((parameter) => parameter !== 'sort' && parameter !== 'limit'), [], 'Try it out on listEvents pre-fills no filter (only the defaults of sort and limit), so typing only q searches everything', { prefilled,
    });
    await swagger.clearParameters(listEvents, ['q']);
    await swagger.fillParameter(listEvents, 'q', word);
    const found = await swagger.execute(listEvents);
    await tab.screenshot('list-events-search-200', swagger.liveResponse(listEvents));
    t.equal(found.status, 200, 'listEvents: the page shows 200', { body: found.body });
    const results = parseShownJson(t, found.body, 'listEvents response');
    t.equal(Array.isArray(results) ? results.length : undefined, 1, 'the search by the unique word finds one event');
    t.match(results, [{ id: eventId, name }], 'the page shows the new event in the results');

    await swagger.open(`${system.ticket.url}/docs`);
    const createTicket = await swagger.tryItOut('Tickets', 'createTicket');
    const ticketExample = parseShownJson(t, await swagger.requestBodyText(createTicket), 'createTicket example');
    t.match(ticketExample, { event_id: 1, customer_name: 'John Doe', quantity: 2 }, 'the body is pre-filled with the original API example');
    await swagger.fillRequestBody(createTicket, JSON.stringify({ ...ticketExample, event_id: eventId, quantity: 2 }, null, 2));
    // A fresh key per purchase, as the spec asks.
    await swagger.fillParameter(createTicket, 'Idempotency-Key', randomUUID());
    const reserved = await swagger.execute(createTicket);
    await tab.screenshot('create-ticket-201', swagger.liveResponse(createTicket));
    t.equal(reserved.status, 201, 'createTicket: the page shows 201', { body: reserved.body });
    const ticket = parseShownJson(t, reserved.body, 'createTicket response');
    t.match(ticket, { event_id: eventId, quantity: 2, status: 'RESERVED', total_price: 20000, event: { name } }, 'the page shows the reserved ticket');
    const ticketId = idOf(ticket);
    const reference = ticket && !Array.isArray(ticket) && typeof ticket.reference === 'string' ? ticket.reference : undefined;
    if (ticketId === undefined || reference === undefined) return t.fail('the page shows no id or reference for the reserved ticket');
    t.equal(await availableSeats(system, eventId), 8, 'after the purchase event-service has 8 seats left');

    const updateStatus = await swagger.tryItOut('Tickets', 'updateTicketStatus');
    await swagger.fillParameter(updateStatus, 'id', String(ticketId));
    await swagger.fillParameter(updateStatus, 'X-Ticket-Reference', reference);
    t.same(parseShownJson(t, await swagger.requestBodyText(updateStatus), 'updateTicketStatus example'), { status: 'CONFIRMED' }, 'the body is pre-filled with the confirm example');
    const confirmed = await swagger.execute(updateStatus);
    await tab.screenshot('confirm-ticket-200', swagger.liveResponse(updateStatus));
    t.equal(confirmed.status, 200, 'confirm: the page shows 200', { body: confirmed.body });
    t.match(parseShownJson(t, confirmed.body, 'confirm response'), { id: ticketId, status: 'CONFIRMED' }, 'the page shows the ticket confirmed');
    t.equal(await availableSeats(system, eventId), 8, 'confirming keeps 8 seats left');

    await swagger.fillRequestBody(updateStatus, '{"status": "CANCELLED"}');
    const cancelled = await swagger.execute(updateStatus);
    await tab.screenshot('cancel-ticket-200', swagger.liveResponse(updateStatus));
    t.equal(cancelled.status, 200, 'cancel: the page shows 200', { body: cancelled.body });
    t.match(parseShownJson(t, cancelled.body, 'cancel response'), { id: ticketId, status: 'CANCELLED', cancellation_reason: 'customer' }, 'the page shows the ticket cancelled');
    t.equal(await availableSeats(system, eventId), 10, 'cancelling gives the seats back: 10 available');

    t.same(await system.audit(), [], 'the invariant holds across both services');
    t.same(tab.externalRequests, [], 'the pages load nothing from outside the two services');
  });

  t.test('the ticket-service page, switched to the event-service spec, tries getEvent on the other origin and shows 200', async (t) => {
    const tab = await openPage(t, browser, 'browser-cross-origin');
    const swagger = new SwaggerUiPage(tab.page);
    const event = await createEventThroughClient(system, `Cross Origin ${uniqueWord()}`, 5);

    await swagger.open(`${system.ticket.url}/docs`);
    await swagger.selectSpec('event-service', swagger.operation('Events', 'getEvent'));
    const getEvent = await swagger.tryItOut('Events', 'getEvent');
    await swagger.fillParameter(getEvent, 'id', String(event.id));
    const shown = await swagger.execute(getEvent);
    await tab.screenshot('ticket-page-get-event-200', swagger.liveResponse(getEvent));
    t.equal(shown.status, 200, 'the page shows 200 from event-service (its CORS lets the ticket-service origin in)', { body: shown.body, pageErrors: tab.pageErrors });
    t.match(parseShownJson(t, shown.body, 'getEvent response'), { id: event.id, name: event.name, available_tickets: 5 }, 'the page shows the event');
    t.equal(shown.requestUrl, `${system.event.url}/events/${event.id}`, 'the page sent the request to event-service');
    t.equal(new URL(tab.page.url()).origin, system.ticket.url, 'from a page on the ticket-service origin');
  });

  t.test('updateEvent from the event-service page succeeds with the parameters as Try it out pre-fills them', async (t) => {
    const tab = await openPage(t, browser, 'browser-update-event');
    const swagger = new SwaggerUiPage(tab.page);
    const event = await createEventThroughClient(system, `Update Me ${uniqueWord()}`, 5);

    await swagger.open(`${system.event.url}/docs`);
    const updateEvent = await swagger.tryItOut('Events', 'updateEvent');
    await swagger.fillParameter(updateEvent, 'id', String(event.id));
    await swagger.fillRequestBody(updateEvent, '{"total_tickets": 6}');
    const prefilled = await swagger.filledParameters(updateEvent);
    const asPrefilled = await swagger.execute(updateEvent);
    await tab.screenshot(`update-event-as-prefilled-${screenshotStatus(asPrefilled.statusText)}`, swagger.liveResponse(updateEvent));
    t.equal(asPrefilled.status, 200, 'the update as pre-filled is applied', { prefilled, body: asPrefilled.body });

    await swagger.clearParameters(updateEvent, ['id']);
    const updated = await swagger.execute(updateEvent);
    await tab.screenshot('update-event-without-if-match-200', swagger.liveResponse(updateEvent));
    t.equal(updated.status, 200, 'without If-Match the page shows 200', { body: updated.body });
    t.match(parseShownJson(t, updated.body, 'updateEvent response'), { id: event.id, total_tickets: 6, available_tickets: 6 }, 'the page shows the event with 6 seats');
    t.equal(await availableSeats(system, event.id), 6, 'event-service has the update');
  });

  t.test('the ticket-service page, switched to the event-service spec, updates an event on the other origin (a PUT, so CORS preflights it)', async (t) => {
    const tab = await openPage(t, browser, 'browser-cross-origin-put');
    const swagger = new SwaggerUiPage(tab.page);
    const event = await createEventThroughClient(system, `Cross Origin Put ${uniqueWord()}`, 5);

    await swagger.open(`${system.ticket.url}/docs`);
    await swagger.selectSpec('event-service', swagger.operation('Events', 'updateEvent'));
    const updateEvent = await swagger.tryItOut('Events', 'updateEvent');
    await swagger.clearParameters(updateEvent, ['id']);
    await swagger.fillParameter(updateEvent, 'id', String(event.id));
    await swagger.fillRequestBody(updateEvent, '{"total_tickets": 6}');
    const updated = await swagger.execute(updateEvent);
    await tab.screenshot(`ticket-page-update-event-${screenshotStatus(updated.statusText)}`, swagger.liveResponse(updateEvent));
    t.equal(updated.requestUrl, `${system.event.url}/events/${event.id}`, 'the page sent the PUT to event-service');
    t.equal(updated.status, 200, 'the page shows 200 from event-service', { body: updated.body, pageErrors: tab.pageErrors });
    t.match(updated.body, /"total_tickets": 6/, 'the page shows the event with 6 seats');
    t.equal(await availableSeats(system, event.id), 6, 'event-service has the update');
  });

  t.test('an invalid body shows the problem+json validation error in the page: 400, its type and every field pointer', async (t) => {
    const tab = await openPage(t, browser, 'browser-invalid');
    const swagger = new SwaggerUiPage(tab.page);
    const event = await createEventThroughClient(system, `Invalid Body ${uniqueWord()}`, 10);

    await swagger.open(`${system.ticket.url}/docs`);
    const createTicket = await swagger.tryItOut('Tickets', 'createTicket');
    await swagger.clearParameters(createTicket);
    await swagger.fillRequestBody(createTicket, JSON.stringify({ event_id: event.id, customer_name: 'John Doe', customer_email: 'john@example.com', quantity: '2', seat: 'A1' }, null, 2));
    const rejected = await swagger.execute(createTicket);
    await tab.screenshot('create-ticket-400', swagger.liveResponse(createTicket));
    t.equal(rejected.status, 400, 'the page shows 400', { body: rejected.body });
    t.match(rejected.body, 'urn:eventsync:problem:validation', 'the body names the validation problem type');
    t.match(rejected.body, '"#/quantity"', 'the body points at the quantity sent as a string');
    t.match(rejected.body, '"#/seat"', 'the body points at the unknown field');
    t.match(parseShownJson(t, rejected.body, 'problem'), { type: 'urn:eventsync:problem:validation', status: 400, errors: Array }, 'the body is the problem document');
    const responseHeaders = await createTicket.locator('.live-responses-table .response .response-col_description').innerText();
    t.match(responseHeaders, /content-type: application\/problem\+json/i, 'the page shows the problem+json content type');
    t.equal(await availableSeats(system, event.id), 10, 'no seat was taken');
  });

  t.test('two purchases from the ticket-service page are two reservations: Try it out pre-fills no Idempotency-Key', async (t) => {
    const tab = await openPage(t, browser, 'browser-idempotency-example');
    const swagger = new SwaggerUiPage(tab.page);
    const event = await createEventThroughClient(system, `Two Buyers ${uniqueWord()}`, 10);

    await swagger.open(`${system.ticket.url}/docs`);
    const createTicket = await swagger.tryItOut('Tickets', 'createTicket');
    const prefilled = await swagger.filledParameters(createTicket);
    t.notOk('Idempotency-Key' in prefilled, 'no Idempotency-Key is pre-filled', { prefilled });
    const statuses: number[] = [];
    for (const [buyer, quantity] of [['ann', 1], ['bob', 2]] as const) {
      await swagger.fillRequestBody(createTicket, JSON.stringify({ event_id: event.id, customer_name: buyer, customer_email: `${buyer}@example.com`, quantity }, null, 2));
      const answer = await swagger.execute(createTicket);
      statuses.push(answer.status);
      await tab.screenshot(`purchase-by-${buyer}-${screenshotStatus(answer.statusText)}`, swagger.liveResponse(createTicket));
    }
    t.same(statuses, [201, 201], 'both purchases are reserved');
    t.equal(await availableSeats(system, event.id), 7, '3 seats are held');
  });
});
