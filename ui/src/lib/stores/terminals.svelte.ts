import { closeTerminal, type ApiError, type GrantView, type TerminalEvent, type TerminalView } from '../ipc';
import type { StepUpStore } from './stepup.svelte';

/** Output kept per terminal so a tab shown again (after visiting another area) can redraw. */
const KEEP_BYTES = 512 * 1024;

export interface TerminalTab {
  view: TerminalView;
  /** The broker's last warning that the session ends with its grant. */
  warning: { message: string; ends_at_ms: number } | null;
  /** Set once the session is over; the tab stays until the user closes it. */
  ended: { reason: string; message: string } | null;
}

type OutputListener = (data: Uint8Array) => void;

function decode(base64: string): Uint8Array {
  try {
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  } catch {
    return new Uint8Array();
  }
}

/**
 * The signed-in user's open terminals, owned by the app (not the Sessions page) so that they
 * survive moving between areas. Output is shown, never interpreted; it is kept (bounded) only
 * to redraw a tab that is mounted again. The credential stays in the core.
 */
export class TerminalsStore {
  tabs = $state.raw<TerminalTab[]>([]);
  selected = $state<string | null>(null);
  /**
   * A request that terminal `id` take the keyboard (it was just opened, or its tab was chosen):
   * its pane focuses xterm and clears the request. A new object each time, so asking again works.
   */
  focusRequest = $state.raw<{ id: string } | null>(null);

  private readonly output = new Map<string, Uint8Array[]>();
  private readonly listeners = new Map<string, Set<OutputListener>>();

  /**
   * Runs the session step-up for `grant` and opens its terminal as a new, selected tab.
   * Resolves with the view, or `null` when the user cancelled; rejects with an `ApiError` when
   * the step-up could not be prepared.
   */
  async open(stepup: StepUpStore, grant: GrantView): Promise<TerminalView | null> {
    let sessionId: string | null = null;
    const early: TerminalEvent[] = [];
    const view = await stepup.openTerminal({ grant_id: grant.id }, (event) => {
      if (sessionId === null) early.push(event);
      else this.event(sessionId, event);
    });
    if (view === null) return null;
    sessionId = view.session_id;
    this.output.set(view.session_id, []);
    this.tabs = [...this.tabs, { view, warning: null, ended: null }];
    this.selected = view.session_id;
    for (const event of early) this.event(view.session_id, event);
    return view;
  }

  /** Selects terminal `id` and gives it the keyboard, so typing goes to the shell. */
  focus(id: string): void {
    if (this.tab(id) === undefined) return;
    this.selected = id;
    this.focusRequest = { id };
  }

  tab(id: string): TerminalTab | undefined {
    return this.tabs.find((t) => t.view.session_id === id);
  }

  /** Everything received so far, then every new chunk until the returned function is called. */
  subscribe(id: string, listener: OutputListener): () => void {
    for (const chunk of this.output.get(id) ?? []) listener(chunk);
    let set = this.listeners.get(id);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(id, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /**
   * Closes a tab: ends the session in the core first when it is still live. Rejects with the
   * `ApiError` (the tab stays) when the core refuses, unless the session is already gone.
   */
  async close(id: string): Promise<void> {
    const tab = this.tab(id);
    if (tab === undefined) return;
    if (tab.ended === null) {
      try {
        await closeTerminal({ session_id: id });
      } catch (reason) {
        if ((reason as ApiError).code !== 'not_found') throw reason;
      }
    }
    const index = this.tabs.findIndex((t) => t.view.session_id === id);
    this.tabs = this.tabs.filter((t) => t.view.session_id !== id);
    this.output.delete(id);
    this.listeners.delete(id);
    if (this.selected === id) {
      const next = this.tabs[Math.min(index, this.tabs.length - 1)];
      this.selected = next?.view.session_id ?? null;
    }
  }

  /** Forgets every tab (sign-out: the core ends the sessions itself). */
  clear(): void {
    this.tabs = [];
    this.selected = null;
    this.focusRequest = null;
    this.output.clear();
    this.listeners.clear();
  }

  private event(id: string, event: TerminalEvent): void {
    if (this.tab(id) === undefined) return; // closed meanwhile
    switch (event.type) {
      case 'output': {
        const data = decode(event.data);
        const kept = this.output.get(id) ?? [];
        kept.push(data);
        let total = kept.reduce((n, c) => n + c.length, 0);
        while (total > KEEP_BYTES && kept.length > 1) total -= kept.shift()?.length ?? 0;
        this.output.set(id, kept);
        for (const listener of [...(this.listeners.get(id) ?? [])]) listener(data);
        break;
      }
      case 'warning':
        this.update(id, { warning: { message: event.message, ends_at_ms: event.ends_at_ms } });
        break;
      case 'ended':
        this.update(id, { ended: { reason: event.reason, message: event.message }, warning: null });
        break;
    }
  }

  private update(id: string, fields: Partial<TerminalTab>): void {
    this.tabs = this.tabs.map((t) => (t.view.session_id === id ? { ...t, ...fields } : t));
  }
}

/** Why a session ended, in words (`SessionView.end_reason` / the `ended` event's reason). */
export function endReasonText(reason: string): string {
  switch (reason) {
    case 'closed':
      return 'The session was closed.';
    case 'grant_ended':
      return 'The grant ended, and the session with it.';
    case 'revoked':
      return 'The grant was revoked, which ended the session.';
    case 'killed':
      return 'An administrator ended (killed) this session.';
    case 'recording_failed':
      return 'The recording failed, so the broker ended the session.';
    case 'broker_restart':
      return 'The broker restarted; the session could not continue.';
    case 'broker_shutdown':
      return 'The broker carrying the session shut down; open it again to reach another broker.';
    case 'broker_lost':
      return 'The broker carrying the session stopped answering; another broker ended it.';
    case 'database_lost':
      return 'The broker lost its database, so it ended the session: nothing could be recorded or revoked.';
    case 'connection_lost':
      return 'The connection to the broker was lost; the session could not continue.';
    case 'target_closed':
      return 'The target closed the connection.';
    case 'command_denied':
      return 'The command is not allowed under this grant, so it never reached the target.';
    default:
      return 'The session ended.';
  }
}
