import { liveEvents, type LiveEvent } from '../ipc';
import { LIVE_EVENT_LABEL, PROMINENT_EVENTS } from '../util/grants';

/** How often the core is asked for live events while a user is signed in. */
export const LIVE_POLL_MS = 1_000;
/** Without a live connection to the broker, pages re-fetch this often instead. */
export const FALLBACK_REFRESH_MS = 10_000;
/** How long a toast stays; warnings and break-glass stay longer. */
export const TOAST_MS = 8_000;
export const PROMINENT_TOAST_MS = 15_000;
/** The oldest toasts go first beyond this many. */
const MAX_TOASTS = 4;

export interface LiveToast {
  id: number;
  kind: string;
  title: string;
  message: string;
  prominent: boolean;
}

/** Told when pages should re-fetch: with the new events, or `[]` for a fallback / resync. */
export type RefreshListener = (events: LiveEvent[]) => void;

/**
 * Live updates from the broker through the core (`live_events`), polled every second while a
 * user is signed in. New events make subscribed pages refresh and show as toasts. While the
 * core reports no live connection (or the call fails), subscribers are asked to refresh every
 * `FALLBACK_REFRESH_MS` instead.
 *
 * The first answer after `start` sets the baseline: what happened before is already in the
 * data the pages load, so it is not announced.
 */
export class LiveStore {
  /** The core's live connection to the broker; `null` before the first answer. */
  connected = $state<boolean | null>(null);
  toasts = $state.raw<LiveToast[]>([]);

  private since = 0;
  private primed = false;
  private running = false;
  private generation = 0;
  private nextToast = 1;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private fallbackTimer: ReturnType<typeof setInterval> | undefined;
  private readonly toastTimers = new Map<number, ReturnType<typeof setTimeout>>();
  private readonly listeners = new Set<RefreshListener>();
  /** Whether an event is worth a toast now (pages refresh on every event regardless). */
  private readonly announce: (event: LiveEvent) => boolean;

  constructor(announce: (event: LiveEvent) => boolean = () => true) {
    this.announce = announce;
  }

  /** Starts polling (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.since = 0;
    this.primed = false;
    void this.poll();
  }

  /** Stops polling and clears the toasts (sign-out, teardown). Subscriptions stay. */
  stop(): void {
    this.running = false;
    this.generation++;
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.setConnected(null);
    for (const timer of this.toastTimers.values()) clearTimeout(timer);
    this.toastTimers.clear();
    this.toasts = [];
  }

  /** Calls `listener` whenever pages should re-fetch. Returns the unsubscribe function. */
  onRefresh(listener: RefreshListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  dismiss(id: number): void {
    clearTimeout(this.toastTimers.get(id));
    this.toastTimers.delete(id);
    this.toasts = this.toasts.filter((t) => t.id !== id);
  }

  private async poll(): Promise<void> {
    const generation = this.generation;
    try {
      const feed = await liveEvents(this.since);
      if (generation !== this.generation) return;
      this.setConnected(feed.connected);
      const restarted = feed.seq < this.since; // the core's feed started over: we may have missed some
      this.since = feed.seq;
      if (restarted) {
        this.notify([]);
      } else if (!this.primed) {
        this.primed = true;
        if (feed.events.length > 0) this.notify(feed.events);
      } else if (feed.events.length > 0) {
        for (const event of feed.events) this.toast(event);
        this.notify(feed.events);
      }
    } catch {
      if (generation !== this.generation) return;
      this.setConnected(false);
    } finally {
      if (generation === this.generation && this.running) {
        this.pollTimer = setTimeout(() => void this.poll(), LIVE_POLL_MS);
      }
    }
  }

  private setConnected(connected: boolean | null): void {
    this.connected = connected;
    if (connected === false && this.running) {
      this.fallbackTimer ??= setInterval(() => this.notify([]), FALLBACK_REFRESH_MS);
    } else {
      clearInterval(this.fallbackTimer);
      this.fallbackTimer = undefined;
    }
  }

  private notify(events: LiveEvent[]): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(events);
      } catch {
        // One page's failure must not keep the others stale.
      }
    }
  }

  private toast(event: LiveEvent): void {
    if (event.kind === 'resync') return; // nothing to tell, only to re-fetch
    if (!this.announce(event)) return; // e.g. a grant warning before the grant's own warning window
    const prominent = PROMINENT_EVENTS.has(event.kind);
    const toast: LiveToast = {
      id: this.nextToast++,
      kind: event.kind,
      title: LIVE_EVENT_LABEL[event.kind] ?? 'Update',
      message: event.message,
      prominent,
    };
    const kept = [...this.toasts, toast];
    for (const old of kept.slice(0, Math.max(0, kept.length - MAX_TOASTS))) {
      clearTimeout(this.toastTimers.get(old.id));
      this.toastTimers.delete(old.id);
    }
    this.toasts = kept.slice(-MAX_TOASTS);
    this.toastTimers.set(
      toast.id,
      setTimeout(() => this.dismiss(toast.id), prominent ? PROMINENT_TOAST_MS : TOAST_MS),
    );
  }
}
