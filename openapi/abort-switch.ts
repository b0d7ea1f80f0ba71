/**
 * Light aborts for outgoing undici calls. undici's `signal` takes an EventEmitter with `aborted` and
 * `reason` as well as an AbortSignal; an AbortController costs about 6 µs to make and listen to (its
 * EventTarget), a switch about 0.4 µs, and a service makes one or two calls per purchase (the hold
 * call, the webhook attempt). `callBudget` gives a call its switch, pulled when its time is up or when
 * the caller's signal (a service's `stopping`) aborts.
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
 * The switches of the calls in flight under one signal, all pulled when it aborts: one listener on it
 * for all calls, rather than one added and removed per call.
 */
export class AbortSwitches {
  private readonly live = new Set<AbortSwitch>();

  constructor(private readonly signal: AbortSignal) {
    signal.addEventListener(
      'abort',
      () => {
        for (const entry of this.live) entry.abort(signal.reason);
      },
      { once: true },
    );
  }

  /** A switch for a new call, pulled already if the signal is; `done` forgets it. */
  open(): { switch: AbortSwitch; done: () => void } {
    const entry = new AbortSwitch();
    if (this.signal.aborted) entry.abort(this.signal.reason);
    else this.live.add(entry);
    return { switch: entry, done: () => this.live.delete(entry) };
  }
}

const underSignal = new WeakMap<AbortSignal, AbortSwitches>();

/**
 * One budget for a whole call: its switch is pulled with `timeoutReason()` after `timeoutMs`, or with
 * the signal's reason when `signal` aborts. `end` (in a `finally`) stops the timer and forgets the call.
 */
export function callBudget(timeoutMs: number, timeoutReason: () => unknown, signal?: AbortSignal): { switch: AbortSwitch; timedOut: () => boolean; end: () => void } {
  let switches: AbortSwitches | undefined;
  if (signal) {
    switches = underSignal.get(signal);
    if (!switches) {
      switches = new AbortSwitches(signal);
      underSignal.set(signal, switches);
    }
  }
  const { switch: budget, done } = switches?.open() ?? { switch: new AbortSwitch(), done: () => undefined };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    budget.abort(timeoutReason());
  }, timeoutMs);
  return {
    switch: budget,
    timedOut: () => timedOut,
    end: () => {
      clearTimeout(timer);
      done();
    },
  };
}
