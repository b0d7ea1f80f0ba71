/**
 * A light abort for one outgoing undici call. undici's `signal` takes an EventEmitter with `aborted`
 * and `reason` as well as an AbortSignal; an AbortController costs about 6 µs to make and listen to
 * (its EventTarget), this about 0.4 µs, and the service makes one or two per purchase (the hold call,
 * the webhook attempt). The call rejects with `reason` once `abort` is called.
 */
import { EventEmitter } from 'node:events';

export class AbortSwitch extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

/**
 * The switches of the calls in flight, all aborted when `signal` (a service's `stopping`) aborts: one
 * listener on it for all calls, rather than one added and removed per call.
 */
export class AbortSwitches {
  private readonly live = new Set<AbortSwitch>();

  constructor(private readonly signal: AbortSignal) {
    signal.addEventListener('abort', () => {
      for (const entry of this.live) entry.abort(signal.reason);
    }, { once: true });
  }

  /** A switch for a new call, aborted already if the signal is; `done` forgets it. */
  open(): { switch: AbortSwitch; done: () => void } {
    const entry = new AbortSwitch();
    if (this.signal.aborted) entry.abort(this.signal.reason);
    else this.live.add(entry);
    return { switch: entry, done: () => this.live.delete(entry) };
  }
}
