/**
 * The `event` summary shown on tickets (name, date, venue), looked up from event-service in batches
 * and kept briefly. Never fails: when event-service is unreachable the summary is left out. It is an
 * optional enrichment, so failing must be cheap: a look-up has a short budget, concurrent reads share
 * one look-up per event, and after a failed look-up reads skip it for a few seconds instead of each
 * waiting for a dependency that is down.
 */
import type { CallOrigin, ServiceClient, EventOperations } from '../../openapi/client.js';
import type { components } from '../../openapi/generated/ticket-service.js';

export type EventSummary = components['schemas']['EventSummary'];

const FRESH_MS = 5000;
const LOOKUP_TIMEOUT_MS = 1000;
/** How long reads go without looking up after a look-up failed. */
const SKIP_AFTER_FAILURE_MS = 5000;
const CHUNK = 1000;

export class EventSummaries {
  private readonly cache = new Map<number, { summary: EventSummary | undefined; at: number }>();
  private readonly lookups = new Map<number, Promise<void>>();
  private skipUntil = 0;

  constructor(private readonly events: ServiceClient<EventOperations>) {}

  async get(eventId: number, origin?: CallOrigin): Promise<EventSummary | undefined> {
    return (await this.getMany([eventId], origin)).get(eventId);
  }

  async getMany(eventIds: number[], origin?: CallOrigin): Promise<Map<number, EventSummary>> {
    const now = Date.now();
    const unique = [...new Set(eventIds)];
    if (now >= this.skipUntil) {
      const missing = unique.filter((id) => {
        const entry = this.cache.get(id);
        return (!entry || now - entry.at > FRESH_MS) && !this.lookups.has(id);
      });
      for (let start = 0; start < missing.length; start += CHUNK) {
        const chunk = missing.slice(start, start + CHUNK);
        const lookup = this.lookUp(chunk, origin, now).finally(() => {
          for (const id of chunk) if (this.lookups.get(id) === lookup) this.lookups.delete(id);
        });
        for (const id of chunk) this.lookups.set(id, lookup);
      }
      await Promise.all(unique.map((id) => this.lookups.get(id)));
    }
    if (this.cache.size > 10_000) this.evictOldest(now);
    const summaries = new Map<number, EventSummary>();
    for (const id of unique) {
      const summary = this.cache.get(id)?.summary;
      if (summary) summaries.set(id, summary);
    }
    return summaries;
  }

  /** Looks up one chunk of events; a failure only makes later reads skip look-ups for a while. */
  private async lookUp(ids: number[], origin: CallOrigin | undefined, now: number): Promise<void> {
    try {
      const result = await this.events.call('listEvents', { query: { ids: ids.join(','), limit: CHUNK } }, { ...origin, timeoutMs: LOOKUP_TIMEOUT_MS });
      if (result.ok) {
        const found = new Map(result.body.map((event) => [event.id, { name: event.name, event_date: event.event_date, venue: event.venue }]));
        for (const id of ids) this.cache.set(id, { summary: found.get(id), at: now });
        return;
      }
    } catch {
      // Unreachable: handled like a refusal below.
    }
    this.skipUntil = Date.now() + SKIP_AFTER_FAILURE_MS;
  }

  private evictOldest(now: number): void {
    for (const [id, entry] of this.cache) if (now - entry.at > FRESH_MS) this.cache.delete(id);
  }
}
