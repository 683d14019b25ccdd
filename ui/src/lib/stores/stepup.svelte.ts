import {
  cancelStepUp,
  confirmStepUp,
  prepareStepUp,
  type ApiError,
  type StepUpAction,
  type SecurityKeyView,
  type StepUpPrompt,
} from '../ipc';

const TICK_MS = 250;

/** Errors after which the same prompt cannot be approved any more. */
const TERMINAL: ReadonlySet<ApiError['code']> = new Set([
  'challenge_invalid',
  'unauthenticated',
  'reauthentication_required',
  'account_locked',
  'not_found',
  'conflict',
]);

export type StepUpPhase = 'ready' | 'confirming';

interface Open {
  prompt: StepUpPrompt;
  resolve: (keys: SecurityKeyView[] | null) => void;
  /** `performance.now()` when the prompt arrived. */
  receivedAt: number;
}

/**
 * One step-up at a time: `request(action)` prepares it in the core, shows the modal and
 * settles when the user approved (the updated key list) or cancelled (`null`). A failure to
 * prepare rejects with the `ApiError`, for the caller to show next to what was clicked.
 *
 * The countdown uses `performance.now()` (monotonic), like the grant countdown.
 */
export class StepUpStore {
  prompt = $state.raw<StepUpPrompt | null>(null);
  phase = $state<StepUpPhase>('ready');
  error = $state.raw<ApiError | null>(null);
  private now = $state(0);
  private receivedAt = $state(0);
  /** What had focus when the step-up was asked for; the dialog gives focus back to it. */
  returnFocus: HTMLElement | null = null;
  private open: Open | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;

  remainingMs = $derived.by((): number => {
    if (this.prompt === null) return 0;
    return Math.max(0, this.prompt.expires_in_secs * 1000 - (this.now - this.receivedAt));
  });
  expired = $derived(this.prompt !== null && this.remainingMs <= 0);
  /** The prompt can no longer be approved (expired, or the core said it is spent). */
  dead = $derived(this.expired || (this.error !== null && TERMINAL.has(this.error.code)));

  async request(action: StepUpAction): Promise<SecurityKeyView[] | null> {
    if (this.open !== null) this.settle(null, true);
    const active = document.activeElement;
    this.returnFocus = active instanceof HTMLElement && active !== document.body ? active : null;
    const prompt = await prepareStepUp(action); // rejects with ApiError
    return new Promise((resolve) => {
      const at = performance.now();
      this.open = { prompt, resolve, receivedAt: at };
      this.receivedAt = at;
      this.now = at;
      this.error = null;
      this.phase = 'ready';
      this.prompt = prompt;
      clearInterval(this.timer);
      this.timer = setInterval(() => {
        this.now = performance.now();
      }, TICK_MS);
    });
  }

  async approve(): Promise<void> {
    const open = this.open;
    if (open === null || this.phase === 'confirming' || this.dead) return;
    this.now = performance.now();
    if (this.expired) return;
    this.phase = 'confirming';
    this.error = null;
    try {
      const keys = await confirmStepUp(open.prompt.id);
      if (this.open !== open) return;
      this.settle(keys, false);
    } catch (reason) {
      if (this.open !== open) return;
      this.error = reason as ApiError;
      this.phase = 'ready';
    }
  }

  /** Cancels in the core too (best effort: a prompt the core already dropped is fine). */
  cancel(): void {
    if (this.open === null || this.phase === 'confirming') return;
    this.settle(null, true);
  }

  /** Test and teardown helper. */
  stop(): void {
    clearInterval(this.timer);
  }

  private settle(keys: SecurityKeyView[] | null, cancel: boolean): void {
    const open = this.open;
    if (open === null) return;
    this.open = null;
    clearInterval(this.timer);
    this.timer = undefined;
    this.prompt = null;
    this.error = null;
    this.phase = 'ready';
    if (cancel) void cancelStepUp(open.prompt.id).catch(() => undefined);
    open.resolve(keys);
  }
}
