import {
  cancelStepUp,
  confirmCreateMachine,
  confirmElevation,
  confirmHoldDecision,
  confirmKillSession,
  confirmReveal,
  confirmRotation,
  confirmStepUp,
  confirmTransferMachine,
  openFiles,
  openForward,
  openInTerminal,
  openTerminal,
  prepareCreateMachine,
  prepareElevation,
  prepareHoldDecision,
  prepareKillSession,
  prepareReveal,
  prepareRotation,
  prepareSession,
  prepareStepUp,
  prepareTransferMachine,
  type ApiError,
  type CommandHoldView,
  type ElevationAction,
  type FilesEvent,
  type FilesView,
  type ForwardView,
  type GrantView,
  type HoldDecisionInput,
  type KillSessionInput,
  type MachineCreated,
  type MachineSpec,
  type MachineView,
  type OpenSessionInput,
  type RevealInput,
  type RevealedSecret,
  type RotateInput,
  type VaultAccountView,
  type SessionView,
  type TerminalEvent,
  type TerminalView,
  type TransferMachineInput,
  type SecurityKeyView,
  type StepUpAction,
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

/**
 * For an elevation the signed action is fixed: when the policy refuses it (`forbidden`) or a
 * rule is broken (`bad_request`), signing the same thing again cannot succeed either.
 */
const TERMINAL_ELEVATION: ReadonlySet<ApiError['code']> = new Set([...TERMINAL, 'forbidden', 'bad_request', 'checked_out']);

export type StepUpPhase = 'ready' | 'confirming';

/**
 * What the open step-up is for: the security keys page, an elevation (request, decision,
 * break-glass), a session (open one on a grant, or end someone's), or a held command (run
 * one's own, decide someone else's), a machine identity (create one, assign its owner), or a
 * vaulted account (reveal its secret, rotate it). Sessions and commands read errors in
 * elevation words, machines and the vault in their own; for all of them the same refusals
 * are final.
 */
export type StepUpKind = 'key' | 'elevation' | 'session' | 'command' | 'machine' | 'vault';

interface Open {
  prompt: StepUpPrompt;
  /** Signs `prompt` on the key and performs the action; resolves with what the caller gets. */
  confirm: (id: string) => Promise<unknown>;
  resolve: (result: unknown) => void;
}

/**
 * One step-up at a time, for every purpose: `request(keyAction)` (security keys) and
 * `elevate(elevationAction)` (access requests, approvals, break-glass) prepare it in the core,
 * show the one step-up modal and settle when the user approved (the core's answer: the
 * updated key list, or the grant as stored) or cancelled (`null`). A failure to prepare
 * rejects with the `ApiError`, for the caller to show next to what was clicked.
 *
 * The countdown uses `performance.now()` (monotonic), like the grant countdown.
 */
export class StepUpStore {
  prompt = $state.raw<StepUpPrompt | null>(null);
  kind = $state<StepUpKind>('key');
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
  dead = $derived(
    this.expired ||
      (this.error !== null && (this.kind === 'key' ? TERMINAL : TERMINAL_ELEVATION).has(this.error.code)),
  );

  /** A key-management step-up; settles with the updated key list, or `null` when cancelled. */
  request(action: StepUpAction): Promise<SecurityKeyView[] | null> {
    return this.run('key', () => prepareStepUp(action), confirmStepUp);
  }

  /** An elevation step-up; settles with the grant as the broker stored it, or `null` when cancelled. */
  elevate(action: ElevationAction): Promise<GrantView | null> {
    return this.run('elevation', () => prepareElevation(action), confirmElevation);
  }

  /**
   * A session step-up on an active SSH grant; settles with the open terminal, or `null` when
   * cancelled. `onEvent` receives the terminal's output from the start (maybe before this settles).
   */
  openTerminal(input: OpenSessionInput, onEvent: (event: TerminalEvent) => void): Promise<TerminalView | null> {
    return this.run('session', () => prepareSession(input), (id) => openTerminal(id, onEvent));
  }

  /**
   * A session step-up on an active SSH grant that opens a file connection; settles with it, or
   * `null` when cancelled. `onEvent` receives transfer progress and the connection's end.
   */
  openFiles(input: OpenSessionInput, onEvent: (event: FilesEvent) => void): Promise<FilesView | null> {
    return this.run('session', () => prepareSession(input), (id) => openFiles(id, onEvent));
  }

  /** A session step-up on an active SSH grant, opened in the user's own terminal program. */
  openInTerminal(input: OpenSessionInput): Promise<TerminalView | null> {
    return this.run('session', () => prepareSession(input), openInTerminal);
  }

  /** A session step-up on an active PostgreSQL grant; settles with the local port, or `null`. */
  openForward(input: OpenSessionInput): Promise<ForwardView | null> {
    return this.run('session', () => prepareSession(input), openForward);
  }

  /** An administrator ends someone's session; settles with the session as it ended, or `null`. */
  killSession(input: KillSessionInput): Promise<SessionView | null> {
    return this.run('session', () => prepareKillSession(input), confirmKillSession);
  }

  /**
   * A held command: run one's own (`approve: true`) or decide someone else's; settles with the
   * hold as the broker decided it, or `null` when cancelled.
   */
  decideHold(input: HoldDecisionInput): Promise<CommandHoldView | null> {
    return this.run('command', () => prepareHoldDecision(input), confirmHoldDecision);
  }

  /**
   * An administrator creates a machine identity; settles with the machine and, for a key
   * machine, its join token (for the caller to show once), or `null` when cancelled. The same
   * `spec` goes to the confirm call: the core checks it is the one the prompt described.
   */
  createMachine(spec: MachineSpec): Promise<MachineCreated | null> {
    return this.run('machine', () => prepareCreateMachine(spec), (id) => confirmCreateMachine({ id, spec }));
  }

  /** An administrator hands a machine to a new owner; settles with the machine as it is now, or `null`. */
  transferMachine(input: TransferMachineInput): Promise<MachineView | null> {
    return this.run('machine', () => prepareTransferMachine(input), confirmTransferMachine);
  }

  /**
   * Reveals a vaulted account's secret under one of the caller's grants; settles with the
   * secret (for the caller to show once and drop), or `null` when cancelled. Nothing here
   * keeps it: the open prompt holds the confirm call, not its answer.
   */
  reveal(input: RevealInput): Promise<RevealedSecret | null> {
    return this.run('vault', () => prepareReveal(input), confirmReveal);
  }

  /** An administrator rotates a vaulted account now; settles with the account as it stands, or `null`. */
  rotate(input: RotateInput): Promise<VaultAccountView | null> {
    return this.run('vault', () => prepareRotation(input), confirmRotation);
  }

  private async run<T>(
    kind: StepUpKind,
    prepare: () => Promise<StepUpPrompt>,
    confirm: (id: string) => Promise<T>,
  ): Promise<T | null> {
    if (this.open !== null) this.settle(null, true);
    const active = document.activeElement;
    this.returnFocus = active instanceof HTMLElement && active !== document.body ? active : null;
    const prompt = await prepare(); // rejects with ApiError
    return new Promise<T | null>((resolve) => {
      const at = performance.now();
      this.open = { prompt, confirm, resolve: resolve as (result: unknown) => void };
      this.receivedAt = at;
      this.now = at;
      this.error = null;
      this.phase = 'ready';
      this.kind = kind;
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
      const result = await open.confirm(open.prompt.id);
      if (this.open !== open) return;
      this.settle(result, false);
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

  private settle(result: unknown, cancel: boolean): void {
    const open = this.open;
    if (open === null) return;
    this.open = null;
    clearInterval(this.timer);
    this.timer = undefined;
    this.prompt = null;
    this.error = null;
    this.phase = 'ready';
    if (cancel) void cancelStepUp(open.prompt.id).catch(() => undefined);
    open.resolve(result);
  }
}
