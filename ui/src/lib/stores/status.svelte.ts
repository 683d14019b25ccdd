import { appStatus, type ApiError, type AppStatus } from '../ipc';

export const POLL_MS = 5_000;
const TICK_MS = 1_000;

export type StatusPhase = 'loading' | 'ready' | 'error';

/**
 * Polls `app_status` and keeps the grant countdown.
 *
 * The grant's `remaining_ms` is by the broker's clock at fetch time; we count down from the
 * moment it arrived with `performance.now()` (monotonic), never `Date`, so a wrong or
 * adjusted workstation clock cannot stretch a grant on screen.
 */
export class StatusStore {
  phase = $state<StatusPhase>('loading');
  /** Last status received; kept through a failed poll so the frame does not flicker. */
  status = $state.raw<AppStatus | null>(null);
  error = $state.raw<ApiError | null>(null);
  /** `performance.now()` when `status` arrived. */
  private receivedAt = $state(0);
  /** `performance.now()` at the last tick. */
  private now = $state(0);

  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private tickTimer: ReturnType<typeof setInterval> | undefined;
  private seq = 0;
  private running = false;

  grantRemainingMs = $derived.by((): number | null => {
    const grant = this.status?.grant ?? null;
    if (grant === null) return null;
    return Math.max(0, grant.remaining_ms - (this.now - this.receivedAt));
  });

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tickTimer = setInterval(() => {
      this.now = performance.now();
    }, TICK_MS);
    void this.refresh();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.pollTimer);
    clearInterval(this.tickTimer);
    this.pollTimer = undefined;
    this.tickTimer = undefined;
  }

  /** Fetches now (e.g. after settings were saved) and restarts the poll interval. */
  async refresh(): Promise<void> {
    clearTimeout(this.pollTimer);
    const seq = ++this.seq;
    try {
      const status = await appStatus();
      if (seq !== this.seq) return; // a newer request owns the state
      const at = performance.now();
      this.status = status;
      this.receivedAt = at;
      this.now = at;
      this.error = null;
      this.phase = 'ready';
    } catch (reason) {
      if (seq !== this.seq) return;
      this.error = reason as ApiError; // the ipc module only rejects with ApiError
      this.phase = 'error';
    } finally {
      if (seq === this.seq && this.running) {
        this.pollTimer = setTimeout(() => void this.refresh(), POLL_MS);
      }
    }
  }
}
