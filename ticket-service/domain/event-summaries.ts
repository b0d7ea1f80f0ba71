/**
 * The `event` summary shown on tickets (name, date, venue), looked up from event-service in batches
 * and kept briefly. Never fails: when event-service is unreachable the summary is left out.
 */
import type { ServiceClient, EventOperations } from '../../openapi/client.js';
import type { components } from '../../openapi/generated/ticket-service.js';

export type EventSummary = components['schemas']['EventSummary'];

const FRESH_MS = 5000;
const LOOKUP_TIMEOUT_MS = 1000;

export class EventSummaries {
  private readonly cache = new Map<number, { summary: EventSummary | undefined; at: number }>();

  constructor(private readonly events: ServiceClient<EventOperations>) {}

  async get(eventId: number, requestId?: string): Promise<EventSummary | undefined> {
    return (await this.getMany([eventId], requestId)).get(eventId);
  }

  async getMany(eventIds: number[], requestId?: string): Promise<Map<number, EventSummary>> {
    const now = Date.now();
    const unique = [...new Set(eventIds)];
    const missing = unique.filter((id) => {
      const entry = this.cache.get(id);
      return !entry || now - entry.at > FRESH_MS;
    });
    for (let start = 0; start < missing.length; start += 1000) {
      const chunk = missing.slice(start, start + 1000);
      try {
        const result = await this.events.call(
          'listEvents',
          { query: { ids: chunk.join(','), limit: 1000 } },
          { requestId, timeoutMs: LOOKUP_TIMEOUT_MS },
        );
        if (!result.ok) break;
        const found = new Map(result.body.map((event) => [event.id, { name: event.name, event_date: event.event_date, venue: event.venue }]));
        for (const id of chunk) this.cache.set(id, { summary: found.get(id), at: now });
      } catch {
        break;
      }
    }
    if (this.cache.size > 10_000) this.evictOldest(now);
    const summaries = new Map<number, EventSummary>();
    for (const id of unique) {
      const summary = this.cache.get(id)?.summary;
      if (summary) summaries.set(id, summary);
    }
    return summaries;
  }

  private evictOldest(now: number): void {
    for (const [id, entry] of this.cache) if (now - entry.at > FRESH_MS) this.cache.delete(id);
  }
}
