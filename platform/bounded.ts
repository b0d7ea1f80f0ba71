/**
 * Background work in bounded batches: items run a few at a time, new ones stop starting as soon as the
 * service is shutting down or an item says its dependency is unreachable (the rest stay in their
 * table for the next round), so one hung dependency costs a round one call budget, not one per item.
 */
export type ItemOutcome = 'done' | 'halt';

export async function forEachBounded<T>(items: readonly T[], limit: number, stopping: AbortSignal, work: (item: T) => Promise<ItemOutcome>): Promise<{ started: number; halted: boolean }> {
  let next = 0;
  let halted = false;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!halted && !stopping.aborted && next < items.length) {
      const item = items[next] as T;
      next += 1;
      try {
        if ((await work(item)) === 'halt') halted = true;
      } catch (error) {
        // The first failure halts the batch; it is thrown once the items already started have ended.
        failure ??= { error };
        halted = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return { started: next, halted };
}
