/**
 * `eventsync status` (DESIGN.md, Observability) against running services: one screen (or `--json`)
 * of both services' health, readiness and figures from /metrics; exit 0 healthy, 1 degraded, 3 unreachable.
 */
import t from 'tap';
import { startSystem } from './helpers/system.js';
import { cliFor, closedPortUrl, describeRun, parseJsonOutput, runCli, seedEvent, seedTicket } from './helpers/cli.js';

interface StatusJson {
  status: string;
  services: Record<string, { reachable: boolean; ready: boolean; problems: string[]; figures: Record<string, number> }>;
}

t.test('a healthy system: exit 0, its figures on one screen and in --json; a service that does not answer: exit 3', async (t) => {
  const system = await startSystem(t);
  const event = await seedEvent(system, { name: 'Status Night', total_tickets: 10 });
  await seedTicket(system, event.id, 2, 'CONFIRMED');
  await seedTicket(system, event.id, 1);
  const eventsync = cliFor(system);

  const screen = await eventsync('status');
  t.equal(screen.code, 0, describeRun(screen));
  t.match(screen.stdout, /event-service\s+http:\/\/127\.0\.0\.1:\d+\s+up, ready/);
  t.match(screen.stdout, /1 event; seats 10: 7 available, 1 reserved, 2 sold, 0 set aside/);
  t.match(screen.stdout, /tickets: 1 reserved, 1 confirmed, 0 cancelled/);
  t.match(screen.stdout, /outbox: empty/);
  t.match(screen.stdout, /status: healthy/);

  const json = parseJsonOutput<StatusJson>(await eventsync('--json', 'status'));
  t.equal(json.status, 'healthy');
  t.match(json.services['ticket-service']?.figures, { tickets_reserved: 1, tickets_confirmed: 1, outbox_pending: 0, outbox_oldest_age_seconds: 0 });
  t.match(json.services['event-service']?.figures, { events: 1, seats_total: 10, seats_held: 1, seats_sold: 2 });

  const unreachable = await runCli(['--event-url', system.event.url, '--ticket-url', await closedPortUrl(), 'status']);
  t.equal(unreachable.code, 3, describeRun(unreachable));
  t.match(unreachable.stdout, /ticket-service\s+\S+\s+unreachable/);
  t.match(unreachable.stdout, /status: unreachable/);
});

t.test('ticket-service up but not ready (it cannot reach event-service): degraded, exit 1', async (t) => {
  const nowhere = await closedPortUrl();
  const system = await startSystem(t, { eventServiceUrlForTickets: () => nowhere });
  const result = await cliFor(system)('status');
  t.equal(result.code, 1, describeRun(result));
  t.match(result.stdout, /ticket-service\s+\S+\s+up, NOT ready/);
  t.match(result.stdout, /not ready: event-service/);
  t.match(result.stdout, /status: degraded/);
});
