/**
 * Figures that come from a service's database (tickets by status, the outbox, events and seats), kept
 * current as changes commit instead of counted at scrape time (a COUNT on better-sqlite3 would block
 * the event loop, and purchases with it). A service reads them once at start-up; from then on every
 * store function that changes one records the change against its transaction, and the change is
 * applied only once that transaction is committed and durable (a rolled-back savepoint, a failed
 * commit or a retried PostgreSQL transaction changes nothing).
 *
 * Two kinds of figure, both additive so that workers' changes can be summed (platform/metrics-cluster.ts):
 * plain values (`add`), and values by the second something was created (`addAt`), from which the
 * number and the age of the oldest are read (the outbox's depth and oldest pending age).
 */
import type { Transaction } from 'kysely';
import { Gauge, type Registry } from 'prom-client';

export interface FigureSnapshot {
  values: Record<string, number>;
  /** name → creation second (Unix) → how many. */
  aged: Record<string, Record<string, number>>;
}

export class FigureSet {
  private readonly values = new Map<string, number>();
  private readonly aged = new Map<string, Map<number, number>>();
  /** How many changes were made so far (a worker pushes its figures when this moved). */
  changes = 0;

  add(name: string, delta: number): void {
    this.changes += 1;
    this.values.set(name, (this.values.get(name) ?? 0) + delta);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  /** Something created at `createdAt` (an ISO time or Unix seconds) appears (+1) or goes (−1). */
  addAt(name: string, createdAt: string | number, delta: number): void {
    this.changes += 1;
    const second = typeof createdAt === 'number' ? createdAt : Math.floor(Date.parse(createdAt) / 1000);
    let buckets = this.aged.get(name);
    if (!buckets) {
      buckets = new Map();
      this.aged.set(name, buckets);
    }
    const next = (buckets.get(second) ?? 0) + delta;
    if (next === 0) buckets.delete(second);
    else buckets.set(second, next);
  }

  /** How many of an aged figure there are. */
  count(name: string): number {
    let total = 0;
    for (const n of this.aged.get(name)?.values() ?? []) total += n;
    return total;
  }

  /** The creation second of the oldest one still there, or undefined when there is none. */
  oldest(name: string): number | undefined {
    let oldest: number | undefined;
    for (const [second, n] of this.aged.get(name) ?? []) if (n > 0 && (oldest === undefined || second < oldest)) oldest = second;
    return oldest;
  }

  snapshot(): FigureSnapshot {
    const aged: FigureSnapshot['aged'] = {};
    for (const [name, buckets] of this.aged) aged[name] = Object.fromEntries([...buckets].map(([second, n]) => [String(second), n]));
    return { values: Object.fromEntries(this.values), aged };
  }

  /** Adds another set's figures to this one (a worker's changes, a start-up read). */
  merge(snapshot: FigureSnapshot): this {
    for (const [name, value] of Object.entries(snapshot.values)) this.add(name, value);
    for (const [name, buckets] of Object.entries(snapshot.aged)) for (const [second, n] of Object.entries(buckets)) this.addAt(name, Number(second), n);
    return this;
  }
}

/** A gauge whose values are read from the figures when scraped. */
export interface FigureGauge {
  name: string;
  help: string;
  labelNames?: string[];
  values: (figures: FigureSet, nowSeconds: number) => Array<{ labels?: Record<string, string>; value: number }>;
}

/** Gauges whose values are read from the figures when scraped. */
export function registerFigureGauges(registry: Registry, gauges: FigureGauge[], source: () => FigureSet): void {
  for (const definition of gauges) {
    new Gauge({
      name: definition.name,
      help: definition.help,
      labelNames: definition.labelNames ?? [],
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, value } of definition.values(source(), Date.now() / 1000)) {
          if (labels) this.set(labels, value);
          else this.set(value);
        }
      },
    });
  }
}

type Write<DB> = <T>(work: (trx: Transaction<DB>) => Promise<T>) => Promise<T>;

/**
 * What a store function records against the transaction it runs in: applied to the service's
 * metrics once that change is committed. One recorder per service (its store imports it); a change
 * made outside a tracked write (a tool, a test's own context) records nothing.
 */
export function changeRecorder<M>() {
  const pending = new WeakMap<object, { metrics: M; effects: Array<(metrics: M) => void> }>();
  return {
    record(trx: object, effect: (metrics: M) => void): void {
      pending.get(trx)?.effects.push(effect);
    },
    /**
     * Wraps a store's `write` so that what a change records is applied only if it, and its commit,
     * succeed. The changes of one group commit share a transaction handle but run one after another
     * (each in its savepoint), so while a change's work runs, the handle's entry is that change's.
     * (A handle of its own per change, from `withPlugin`, cost a Kysely instance per change and a
     * plugin pass over every query.)
     */
    track<DB>(write: Write<DB>, metrics: M): Write<DB> {
      return async <T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> => {
        let effects: Array<(metrics: M) => void> = [];
        const value = await write(async (trx) => {
          // A retried transaction (PostgreSQL 40001) starts again with nothing recorded.
          const own = { metrics, effects: [] as Array<(metrics: M) => void> };
          effects = own.effects;
          pending.set(trx, own);
          try {
            return await work(trx);
          } finally {
            if (pending.get(trx) === own) pending.delete(trx);
          }
        });
        for (const effect of effects) effect(metrics);
        return value;
      };
    },
  };
}
