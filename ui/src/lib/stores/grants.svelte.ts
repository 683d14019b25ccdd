import { listGrants, type ApiError, type GrantList, type GrantView } from '../ipc';
import { grantTotalMsById } from '../util/grants';

export const GRANT_TICK_MS = 1_000;
/** After a countdown passed its end the broker is asked again, at most this often, until it agrees. */
const BOUNDARY_RELOAD_MS = 5_000;

/**
 * A list of grants with the broker's clock: by default the signed-in user's requests and grants
 * (`list_grants`), shared by the Access page and the break-glass banner; the Approvals page runs
 * its own over `list_oversight`, so both count down the same way.
 *
 * `now_ms` is the broker's time when it answered; from there we count with `performance.now()`
 * (monotonic), never `Date`, so a wrong or adjusted workstation clock cannot stretch a grant on
 * screen. `brokerNow` ticks once a second while the store runs.
 */
export class GrantsStore {
  grants = $state.raw<GrantView[] | null>(null);
  error = $state.raw<ApiError | null>(null);
  loading = $state(false);
  /** The broker's time at the last answer, and `performance.now()` when it arrived. */
  private brokerAt = $state<number | null>(null);
  private receivedAt = $state(0);
  private tickAt = $state(0);

  private timer: ReturnType<typeof setInterval> | undefined;
  private seq = 0;
  private running = false;
  private boundaryReloadAt = -Infinity;

  /** Where the list comes from: one answer of the broker, with its time. */
  private readonly source: () => Promise<GrantList>;

  constructor(source: () => Promise<GrantList> = listGrants) {
    this.source = source;
  }

  /** Estimated broker time now (ms since the epoch), or `null` before the first answer. */
  brokerNow = $derived(this.brokerAt === null ? null : this.brokerAt + (this.tickAt - this.receivedAt));

  /** Active break-glass grants, ending soonest first. */
  activeBreakGlass = $derived.by((): GrantView[] =>
    (this.grants ?? [])
      .filter((g) => g.break_glass && g.state === 'active' && (this.remainingMs(g) ?? 1) > 0)
      .sort((a, b) => (a.ends_at_ms ?? Infinity) - (b.ends_at_ms ?? Infinity)),
  );

  /** Time left of a grant by the broker's clock; `null` when it has no end or no clock yet. */
  remainingMs(grant: GrantView): number | null {
    if (grant.ends_at_ms === null || this.brokerNow === null) return null;
    return Math.max(0, grant.ends_at_ms - this.brokerNow);
  }

  /** Time left until `endsAtMs` (a grant's end as a session reports it), by the broker's clock. */
  remainingUntil(endsAtMs: number): number | null {
    return this.brokerNow === null ? null : Math.max(0, endsAtMs - this.brokerNow);
  }

  /** The whole duration of grant `id` if it is in the list (`grantTotalMs`), for its warning window. */
  totalMs(id: string): number | null {
    return grantTotalMsById(this.grants, id);
  }

  /** Starts the clock and loads (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.timer = setInterval(() => this.tick(), GRANT_TICK_MS);
    void this.load();
  }

  /** Stops and forgets (sign-out). */
  stop(): void {
    this.running = false;
    clearInterval(this.timer);
    this.timer = undefined;
    this.seq++;
    this.grants = null;
    this.error = null;
    this.loading = false;
    this.brokerAt = null;
  }

  async load(): Promise<void> {
    const seq = ++this.seq;
    this.loading = true;
    try {
      const list = await this.source();
      if (seq !== this.seq) return; // a newer request owns the state
      const at = performance.now();
      this.grants = list.grants;
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

  /** Puts a grant the core just returned in place (or on top), ahead of the next load. */
  upsert(grant: GrantView): void {
    this.tickAt = performance.now(); // its end is by the broker's time now: count from now too
    const list = this.grants ?? [];
    const index = list.findIndex((g) => g.id === grant.id);
    this.grants = index < 0 ? [grant, ...list] : list.map((g) => (g.id === grant.id ? grant : g));
  }

  private tick(): void {
    this.tickAt = performance.now();
    const now = this.brokerNow;
    if (now === null || this.grants === null) return;
    // A countdown reached its end (or a scheduled start came): ask the broker what it made of it.
    const crossed = this.grants.some(
      (g) =>
        (g.state === 'active' && g.ends_at_ms !== null && g.ends_at_ms <= now) ||
        (g.state === 'approved' && g.starts_at_ms !== null && g.starts_at_ms <= now),
    );
    if (crossed && this.tickAt - this.boundaryReloadAt >= BOUNDARY_RELOAD_MS) {
      this.boundaryReloadAt = this.tickAt;
      void this.load();
    }
  }
}
