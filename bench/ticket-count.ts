/** How many tickets ticket-service has (`GET /tickets`'s X-Total-Count): the purchases a storm's CPU window made, warm-up included. */
import { ticketServiceClient } from '../openapi/client.js';

export async function ticketCount(url: string): Promise<number> {
  const tickets = ticketServiceClient({ baseUrl: url, timeoutMs: 30_000 });
  try {
    const page = await tickets.call('listTickets', { query: { limit: 1 } });
    if (!page.ok) throw new Error(`GET /tickets answered HTTP ${page.status}`);
    return Number(page.headers['x-total-count']);
  } finally {
    await tickets.close();
  }
}
