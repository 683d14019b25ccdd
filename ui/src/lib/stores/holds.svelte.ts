import { listHolds, type ApiError, type CommandHoldView, type LiveEvent } from '../ipc';
import type { LiveStore } from './live.svelte';

/** How often the held commands are asked for again while any is pending (a hold lasts minutes). */
export const HOLDS_POLL_MS = 3_000;
/** The countdowns tick this often. */
export const HOLD_TICK_MS = 1_000;
/** Live events that change the list of held commands. */
export const HOLD_EVENTS: ReadonlySet<string> = new Set(['command_held', 'command_decided']);

/**
 * The held commands the signed-in user may act on (`list_holds`): their own, and those they
 * may approve, with the broker's clock for the countdowns to `expires_at`.
 *
 * The list is asked for again on the live events `command_held` / `command_decided` (and on
 * the live store's fallback refresh), every `HOLDS_POLL_MS` while a hold is pending, and when
 * a countdown reaches its end (the broker then refuses the command). The broker's time comes
 * from the core with each answer; from there the store counts with `performance.now()`
 * (monotonic), never `Date`, like the grant countdowns.
 */
export class HoldsStore {
  holds = $state.raw<CommandHoldView[] | null>(null);
  error = $state.raw<ApiError | null>(null);
  loading = $state(false);
  private brokerAt = $state<number | null>(null);
  private receivedAt = $state(0);
  private tickAt = $state(0);

  private timer: ReturnType<typeof setInterval> | undefined;
  private stopLive: (() => void) | null = null;
  private seq = 0;
  private running = false;
  private lastLoad = -Infinity;

  /** Estimated broker time now (ms since the epoch), or `null` while the core has no estimate. */
  brokerNow = $derived(this.brokerAt === null ? null : this.brokerAt + (this.tickAt - this.receivedAt));

  /** Whether any listed hold still waits for a decision. */
  pending = $derived((this.holds ?? []).some((h) => h.state === 'pending'));

  /** Time left before the broker refuses `hold`; `null` without the broker's clock. */
  remainingMs(hold: CommandHoldView): number | null {
    return this.brokerNow === null ? null : Math.max(0, hold.expires_at - this.brokerNow);
  }

  /** How long the broker holds a command in all (`hold_secs`), for the countdown's warning window. */
  totalMs(hold: CommandHoldView): number {
    return Math.max(0, hold.expires_at - hold.created_at);
  }

  /** Starts loading and ticking, refreshing on `live`'s held-command events (idempotent). */
  start(live: LiveStore | null = null): void {
    if (this.running) return;
    this.running = true;
    this.timer = setInterval(() => this.tick(), HOLD_TICK_MS);
    this.stopLive =
      live?.onRefresh((events: LiveEvent[]) => {
        // `[]` is the fallback (no live connection) or a resync: ask, as for a held-command event.
        if (events.length === 0 || events.some((e) => HOLD_EVENTS.has(e.kind))) void this.load();
      }) ?? null;
    void this.load();
  }

  /** Stops and forgets (sign-out, leaving the page). */
  stop(): void {
    this.running = false;
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopLive?.();
    this.stopLive = null;
    this.seq++;
    this.holds = null;
    this.error = null;
    this.loading = false;
    this.brokerAt = null;
  }

  async load(): Promise<void> {
    const seq = ++this.seq;
    this.loading = true;
    this.lastLoad = performance.now();
    try {
      const list = await listHolds();
      if (seq !== this.seq) return; // a newer request owns the state
      const at = performance.now();
      this.holds = list.holds;
      this.brokerAt = list.now_ms;
      this.receivedAt = at;
      this.tickAt = at;
      this.error = null;
    } catch (reason) {
      if (seq !== this.seq) return;
      this.error = reason as ApiError; // the ipc module only rejects with ApiError
    } finally {
      if (seq === this.seq) this.loading = false;
    }
  }

  /** Drops a hold the core just decided, ahead of the next load. */
  settled(hold: CommandHoldView): void {
    if (this.holds !== null) this.holds = this.holds.filter((h) => h.id !== hold.id);
  }

  private tick(): void {
    this.tickAt = performance.now();
    if (!this.pending) return;
    const now = this.brokerNow;
    const ended = now !== null && (this.holds ?? []).some((h) => h.state === 'pending' && h.expires_at <= now);
    if (ended || this.tickAt - this.lastLoad >= HOLDS_POLL_MS) void this.load();
  }
}
