import { cancelKeyPrompt, keyPrompt, onKeyOperation, submitPin, type ApiError, type KeyPromptView } from '../ipc';

export const PROMPT_POLL_MS = 200;

const IDLE: KeyPromptView = { kind: 'idle' };

function same(a: KeyPromptView, b: KeyPromptView): boolean {
  if (a.kind === 'pin' && b.kind === 'pin') return a.retries === b.retries && a.wrong === b.wrong;
  return a.kind === b.kind;
}

/**
 * What the security key wants from the user while a key operation (`login`, `enroll`,
 * `confirmStepUp`) runs: nothing, a touch, or its PIN. The core is asked with `key_prompt`
 * every `PROMPT_POLL_MS` while at least one operation runs, and not at all otherwise.
 *
 * The PIN only passes through `submit`: it is never kept here.
 */
export class KeyPromptStore {
  view = $state.raw<KeyPromptView>(IDLE);
  /** Why the last `submit` was refused (e.g. `bad_request`); cleared by the next answer. */
  error = $state.raw<ApiError | null>(null);
  /** A `submit` is on its way to the core. */
  busy = $state(false);

  private unsubscribe: (() => void) | null = null;
  private polling = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped whenever the view is set locally, so that answers to older polls are dropped. */
  private seq = 0;

  /** Starts following key operations (idempotent). */
  start(): void {
    if (this.unsubscribe !== null) return;
    this.unsubscribe = onKeyOperation((running) => {
      if (running) this.begin();
      else this.end();
    });
  }

  /** Teardown: stops following key operations and polling. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.end();
  }

  /**
   * Hands `pin` to the waiting operation. Resolves `true` once the core took it: the prompt
   * then closes until the core says what comes next (a touch, or the PIN again if wrong).
   */
  async submit(pin: string): Promise<boolean> {
    if (this.busy || this.view.kind !== 'pin') return false;
    this.busy = true;
    this.error = null;
    const seq = ++this.seq;
    try {
      await submitPin(pin);
      if (seq === this.seq) this.view = IDLE;
      this.schedule(); // next poll a full interval later: by then the core has closed the answered prompt
      return true;
    } catch (reason) {
      if (seq === this.seq) this.error = reason as ApiError; // the ipc module only rejects with ApiError
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** Declines the PIN prompt: the running operation then fails with `key_cancelled`. */
  async cancel(): Promise<void> {
    if (this.busy || this.view.kind !== 'pin') return;
    this.seq++;
    this.view = IDLE;
    this.error = null;
    try {
      await cancelKeyPrompt();
    } catch {
      // Nothing to show here: the operation itself reports how it ended.
    }
  }

  private begin(): void {
    if (this.polling) return;
    this.polling = true;
    void this.poll();
  }

  private end(): void {
    this.polling = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.seq++;
    this.view = IDLE;
    this.error = null;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = this.polling ? setTimeout(() => void this.poll(), PROMPT_POLL_MS) : undefined;
  }

  private async poll(): Promise<void> {
    clearTimeout(this.timer);
    const seq = this.seq;
    try {
      const view = await keyPrompt();
      if (seq === this.seq && this.polling && !same(view, this.view)) this.view = view;
    } catch {
      // Keep the last view; the next poll may do better.
    } finally {
      this.schedule();
    }
  }
}
