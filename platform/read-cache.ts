/**
 * A cache of read results that can never serve what a finished change has made stale. Changes run
 * through `change`: the cache is emptied when one starts, and a result is kept only if no change
 * started or was running while it was computed. So a hit is always what the read would return now
 * (or before a change that is still under way, which nobody has been told is done). Bounded, least
 * recently used first out.
 */
export class ReadCache<V> {
  private generation = 0;
  private changing = 0;
  private readonly entries = new Map<string, V>();

  constructor(private readonly capacity = 1000) {}

  /** Runs a change that may make cached results stale. */
  async change<T>(work: () => Promise<T>): Promise<T> {
    this.generation += 1;
    this.changing += 1;
    this.entries.clear();
    try {
      return await work();
    } finally {
      this.changing -= 1;
      this.generation += 1;
    }
  }

  /** The cached result for `key`, or `compute`'s (kept when no change overlapped it). A capacity of 0 keeps nothing. */
  async through(key: string, compute: () => Promise<V>): Promise<V> {
    if (this.capacity === 0) return compute();
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const generation = this.generation;
    const quiet = this.changing === 0;
    const value = await compute();
    if (quiet && this.changing === 0 && generation === this.generation) {
      if (this.entries.size >= this.capacity) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
      this.entries.set(key, value);
    }
    return value;
  }

  get size(): number {
    return this.entries.size;
  }
}
