import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { MockCore } from '../lib/ipc/mock';
import { activeGrant, MIN, renderSignedIn, type } from './elevation-helpers';

/**
 * xterm.js needs layout and a canvas that jsdom does not have: the terminal module is replaced
 * by a plain-text fake with the same interface. The page, the store and the mock core are real.
 */
const fake = vi.hoisted(() => {
  interface Fake {
    text: string;
    disabled: boolean;
    data: Set<(data: string) => void>;
    key: ((event: KeyboardEvent) => boolean) | null;
    disposed: boolean;
  }
  const terminals: Fake[] = [];
  return { terminals };
});

vi.mock('../lib/terminal/xterm', () => ({
  createTerminal: () => {
    const t = {
      text: '',
      disabled: false,
      data: new Set<(data: string) => void>(),
      key: null as ((event: KeyboardEvent) => boolean) | null,
      disposed: false,
    };
    fake.terminals.push(t);
    const decoder = new TextDecoder();
    return {
      write(data: Uint8Array, done?: () => void) {
        t.text += decoder.decode(data, { stream: true });
        done?.();
      },
      onData(listener: (data: string) => void) {
        t.data.add(listener);
        return () => t.data.delete(listener);
      },
      onKey(handler: (event: KeyboardEvent) => boolean) {
        t.key = handler;
      },
      fit: () => ({ cols: 100, rows: 30 }),
      lines: () => t.text.replace(/\r/g, '').split('\n').slice(-30),
      selection: () => '',
      disableInput() {
        t.disabled = true;
      },
      focus() {},
      dispose() {
        t.disposed = true;
      },
    };
  },
}));

/** What the user types into the (fake) terminal: xterm would hand it to onData. */
function typeInTerminal(index: number, data: string): void {
  const t = fake.terminals[index];
  if (t === undefined) throw new Error(`no terminal ${index}`);
  if (t.disabled) return; // xterm with disableStdin emits nothing
  for (const listener of t.data) listener(data);
}

const SSH = (now: number) => activeGrant(now, 30 * MIN);
const DB = (now: number) =>
  activeGrant(now, 45 * MIN, { id: 'gr-ada-2', entitlement: 'db-prod-dba', target_kind: 'postgres', target: 'db-prod-1', role: 'dba' });

async function openSessions(options: Parameters<typeof renderSignedIn>[1] = {}) {
  fake.terminals.length = 0;
  const result = renderSignedIn('#/sessions', { grants: (now) => [SSH(now), DB(now)], ...options });
  await screen.findByTestId('sessions-page');
  return result;
}

function calls(core: MockCore, cmd: string): unknown[] {
  return core.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
}

function grantButton(id: string): HTMLButtonElement {
  const button = screen.getAllByTestId<HTMLButtonElement>('session-open').find((b) => b.dataset['grantId'] === id);
  if (button === undefined) throw new Error(`no open button for ${id}`);
  return button;
}

async function approve(): Promise<void> {
  await fireEvent.click(await screen.findByTestId('stepup-approve'));
  await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
}

/** Opens a terminal on ada's SSH grant; returns its session id. */
async function openTerminal(core: MockCore): Promise<string> {
  await fireEvent.click(await waitFor(() => grantButton('gr-ada-1')));
  await approve();
  const tab = await screen.findByTestId(/^terminal-tab-se-/);
  const id = tab.dataset['testid']?.replace('terminal-tab-', '') ?? tab.getAttribute('data-testid')?.replace('terminal-tab-', '');
  if (id === undefined || !core.sessions.terminals.has(id)) throw new Error('terminal not open in the core');
  return id;
}

function panel(id: string): HTMLElement {
  return screen.getByTestId(`terminal-panel-${id}`);
}

describe('sessions page: open a session', () => {
  it('lists the active grants with the right button and a countdown', async () => {
    await openSessions({
      grants: (now) => [
        SSH(now),
        DB(now),
        activeGrant(now, 10 * MIN, { id: 'gr-ada-3', state: 'released', ended_at_ms: now }),
      ],
    });
    const rows = await screen.findAllByTestId('session-grant');
    expect(rows.map((r) => r.dataset['grantId'])).toEqual(['gr-ada-1', 'gr-ada-2']);
    expect(grantButton('gr-ada-1').textContent).toContain('Open terminal');
    expect(grantButton('gr-ada-2').textContent).toContain('Start local port');
    expect(within(rows[0] as HTMLElement).getByTestId('session-grant-countdown').textContent?.trim()).toMatch(/^(30:00|29:5\d)$/);
    expect(rows[1]?.textContent).toContain('dba@db-prod-1');
  });

  it('says so when there is no active grant', async () => {
    await openSessions({ grants: () => [] });
    expect(await screen.findByTestId('session-grants-empty')).toBeTruthy();
  });

  it('opens a terminal through the step-up modal and makes a tab', async () => {
    const { core } = await openSessions();
    await fireEvent.click(await waitFor(() => grantButton('gr-ada-1')));
    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('Session');
    expect(within(modal).getByTestId('stepup-description').textContent).toContain('Open an SSH session to web-1 as deploy');
    expect(calls(core, 'prepare_session')).toEqual([{ input: { grant_id: 'gr-ada-1' } }]);
    expect(calls(core, 'open_terminal')).toHaveLength(0);
    await approve();

    const tab = await screen.findByTestId(/^terminal-tab-se-/);
    expect(tab.textContent).toContain('deploy@web-1');
    expect(tab.getAttribute('aria-selected')).toBe('true');
    expect(within(tab).getByTestId('terminal-tab-countdown')).toBeTruthy();
    const [open] = calls(core, 'open_terminal') as { id: string; channel: unknown }[];
    expect(open?.id).toMatch(/^ss-/);
    expect(open?.channel).toBeTruthy();
    expect(fake.terminals).toHaveLength(1);
  });

  it('hands an SSH grant to the user’s own terminal through the step-up, with no tab and no secret', async () => {
    const { core } = await openSessions();
    const external = await waitFor(() =>
      screen.getAllByTestId('session-open-external').find((b) => b.getAttribute('data-grant-id') === 'gr-ada-1'),
    );
    expect(external).toBeTruthy();
    await fireEvent.click(external as HTMLElement);
    await screen.findByTestId('stepup-modal');
    expect(calls(core, 'open_in_terminal')).toHaveLength(0);
    await approve();
    await waitFor(() => expect(calls(core, 'open_in_terminal')).toHaveLength(1));
    const [call] = calls(core, 'open_in_terminal') as { id: string }[];
    expect(Object.keys(call ?? {})).toEqual(['id']);
    expect((await screen.findByTestId('sessions-notice')).textContent).toContain('in your terminal');
    expect(screen.queryByTestId(/^terminal-tab-se-/)).toBeNull();
  });

  it('a cancelled step-up opens nothing', async () => {
    const { core } = await openSessions();
    await fireEvent.click(await waitFor(() => grantButton('gr-ada-1')));
    await fireEvent.click(await screen.findByTestId('stepup-cancel'));
    await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
    expect(screen.queryByTestId(/^terminal-tab-/)).toBeNull();
    expect(calls(core, 'cancel_step_up')).toHaveLength(1);
  });

  it('shows a refusal with its code', async () => {
    const { core } = await openSessions();
    core.sessions.failNext('prepare_session', { code: 'forbidden', message: 'sessions are not allowed on this grant' });
    await fireEvent.click(await waitFor(() => grantButton('gr-ada-1')));
    const error = await screen.findByTestId('session-open-error');
    expect(error.dataset['code']).toBe('forbidden');
    expect(error.textContent).toContain('sessions are not allowed on this grant');
    expect(screen.queryByTestId('stepup-modal')).toBeNull();
  });

  it('shows an error of the open itself in the step-up modal, with its code', async () => {
    const { core } = await openSessions();
    core.sessions.failNext('open_terminal', { code: 'broker_unreachable', message: 'connection refused' });
    await fireEvent.click(await waitFor(() => grantButton('gr-ada-1')));
    await fireEvent.click(await screen.findByTestId('stepup-approve'));
    const error = await screen.findByTestId('stepup-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
  });
});

describe('sessions page: terminal tabs', () => {
  it('sends typed input and shows the output in the text mirror', async () => {
    const { core } = await openSessions();
    const id = await openTerminal(core);
    const mirror = within(panel(id)).getByTestId('terminal-text');
    await waitFor(() => expect(mirror.textContent).toContain('Connected to web-1 as deploy'));

    typeInTerminal(0, 'whoami\r');
    await waitFor(() => expect(calls(core, 'terminal_input')).toEqual([{ input: { session_id: id, data: 'whoami\r' } }]));
    await waitFor(() => expect(mirror.textContent).toContain('$ whoami\ndeploy\n$'));
    expect(within(panel(id)).getByTestId('terminal').dataset['ended']).toBe('false');
  });

  it('reports its size to the core', async () => {
    const { core } = await openSessions();
    const id = await openTerminal(core);
    await waitFor(() => expect(core.sessions.resizes).toEqual([{ session_id: id, cols: 100, rows: 30 }]));
  });

  it('answers whoami with root on a root grant', async () => {
    const { core } = await openSessions({ grants: (now) => [activeGrant(now, 30 * MIN, { role: 'root', target: 'app-prod-3', entitlement: 'app-prod-root' })] });
    const id = await openTerminal(core);
    typeInTerminal(0, 'whoami\r');
    await waitFor(() => expect(within(panel(id)).getByTestId('terminal-text').textContent).toContain('whoami\nroot'));
  });

  it('shows the broker’s warning as a banner in the tab', async () => {
    const { core } = await openSessions();
    const id = await openTerminal(core);
    expect(screen.queryByTestId('terminal-warning')).toBeNull();
    core.sessions.warn(id, 5 * MIN - 1_000);
    const warning = await within(panel(id)).findByTestId('terminal-warning');
    expect(warning.textContent).toMatch(/Session ends in (4:5\d|5:00) — the grant ends/);
  });

  it('shows the end with its reason in words, disables input and keeps the tab', async () => {
    const { core } = await openSessions();
    const id = await openTerminal(core);
    core.sessions.end(id, 'killed', 'ended by carol: suspicious activity');
    const ended = await within(panel(id)).findByTestId('terminal-ended');
    expect(ended.textContent).toContain('An administrator ended (killed) this session.');
    expect(ended.textContent).toContain('suspicious activity');
    expect(fake.terminals[0]?.disabled).toBe(true);
    expect(within(panel(id)).getByTestId('terminal').dataset['ended']).toBe('true');
    expect(screen.getByTestId(`terminal-tab-${id}`).dataset['ended']).toBe('true');

    typeInTerminal(0, 'ls\r');
    (fake.terminals[0]?.data.values().next().value as (d: string) => void)('ls\r'); // even if xterm let it through
    expect(calls(core, 'terminal_input')).toHaveLength(0);
  });

  it.each([
    ['grant_ended', 'The grant ended'],
    ['revoked', 'The grant was revoked'],
    ['recording_failed', 'The recording failed'],
    ['broker_restart', 'The broker restarted'],
    ['broker_shutdown', 'The broker carrying the session shut down'],
    ['broker_lost', 'another broker ended it'],
    ['database_lost', 'The broker lost its database'],
    ['connection_lost', 'The connection to the broker was lost'],
  ])('names the reason %s', async (reason, words) => {
    const { core } = await openSessions();
    const id = await openTerminal(core);
    core.sessions.end(id, reason);
    expect((await within(panel(id)).findByTestId('terminal-ended')).textContent).toContain(words);
  });

  it('closing a tab closes the terminal in the core', async () => {
    const { core } = await openSessions();
    const id = await openTerminal(core);
    await fireEvent.click(screen.getByTestId(`terminal-close-${id}`));
    await waitFor(() => expect(screen.queryByTestId(`terminal-tab-${id}`)).toBeNull());
    expect(calls(core, 'close_terminal')).toEqual([{ input: { session_id: id } }]);
    expect(core.sessions.terminals.size).toBe(0);
    expect(fake.terminals[0]?.disposed).toBe(true);
  });

  it('closing an ended tab asks the core for nothing', async () => {
    const { core } = await openSessions();
    const id = await openTerminal(core);
    core.sessions.end(id, 'grant_ended');
    await within(panel(id)).findByTestId('terminal-ended');
    await fireEvent.click(screen.getByTestId(`terminal-close-${id}`));
    await waitFor(() => expect(screen.queryByTestId(`terminal-tab-${id}`)).toBeNull());
    expect(calls(core, 'close_terminal')).toHaveLength(0);
  });

  it('moves between tabs with the arrow keys', async () => {
    const { core } = await openSessions();
    const first = await openTerminal(core);
    await fireEvent.click(grantButton('gr-ada-1'));
    await approve();
    await waitFor(() => expect(screen.getAllByRole('tab')).toHaveLength(2));
    const [a, b] = screen.getAllByRole('tab');
    expect(b?.getAttribute('aria-selected')).toBe('true');
    expect(panel(first).hidden).toBe(true);
    await fireEvent.keyDown(b as HTMLElement, { key: 'ArrowLeft' });
    expect(a?.getAttribute('aria-selected')).toBe('true');
    expect(document.activeElement).toBe(a);
    expect(panel(first).hidden).toBe(false);
  });

  it('keeps the terminal and its output across areas', async () => {
    const { core } = await openSessions();
    const id = await openTerminal(core);
    await waitFor(() => expect(within(panel(id)).getByTestId('terminal-text').textContent).toContain('Connected'));
    await fireEvent.click(screen.getByTestId('nav-access'));
    core.sessions.output(id, 'written while away\r\n');
    await fireEvent.click(screen.getByTestId('nav-sessions'));
    const mirror = within(await screen.findByTestId(`terminal-panel-${id}`)).getByTestId('terminal-text');
    await waitFor(() => expect(mirror.textContent).toContain('written while away'));
    expect(mirror.textContent).toContain('Connected to web-1');
  });
});

describe('sessions page: local ports', () => {
  it('starts a local port through the step-up, lists it with a psql line, and stops it', async () => {
    const { core } = await openSessions();
    await fireEvent.click(await waitFor(() => grantButton('gr-ada-2')));
    expect((await screen.findByTestId('stepup-description')).textContent).toContain('Open a PostgreSQL session to db-prod-1');
    await approve();
    const [forward] = core.sessions.forwards;
    if (forward === undefined) throw new Error('no forward');
    const row = await screen.findByTestId(`forward-${forward.session_id}`);
    expect(within(row).getByTestId('forward-addr').textContent).toBe('127.0.0.1:54321');
    const psql = within(row).getByTestId('forward-psql').textContent;
    expect(psql).toBe('psql "host=127.0.0.1 port=54321 dbname=postgres"');
    expect(psql).not.toMatch(/password/i);
    expect(within(row).getByTestId('forward-countdown')).toBeTruthy();
    expect(calls(core, 'open_forward')).toHaveLength(1);

    await fireEvent.click(within(row).getByTestId(`forward-stop-${forward.session_id}`));
    await waitFor(() => expect(screen.queryByTestId(`forward-${forward.session_id}`)).toBeNull());
    expect(calls(core, 'stop_forward')).toEqual([{ input: { session_id: forward.session_id } }]);
    expect(screen.getByTestId('forwards-empty')).toBeTruthy();
  });

  it('copies the psql line', async () => {
    const writeText = vi.fn(() => Promise.resolve());
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    const { core } = await openSessions();
    await fireEvent.click(await waitFor(() => grantButton('gr-ada-2')));
    await approve();
    const id = core.sessions.forwards[0]?.session_id ?? '';
    await fireEvent.click(await screen.findByTestId(`forward-copy-${id}`));
    await waitFor(() => expect(writeText).toHaveBeenCalledWith('psql "host=127.0.0.1 port=54321 dbname=postgres"'));
  });

  it('shows a failure to list with its code', async () => {
    const { core } = renderSignedIn('#/access');
    core.sessions.failNext('list_forwards', { code: 'broker_unreachable', message: 'connection refused' });
    await fireEvent.click(await screen.findByTestId('nav-sessions'));
    const error = await screen.findByTestId('forwards-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
  });
});

describe('sessions page: live sessions', () => {
  const ADMIN = { name: 'ada', roles: ['engineer', 'admin'] };

  it('shows a non-admin their own sessions, without kill', async () => {
    const { core } = await openSessions();
    const id = await openTerminal(core);
    const table = await screen.findByTestId('live-sessions');
    const row = await within(table).findByTestId(`live-session-${id}`);
    expect(row.textContent).toContain('ada');
    expect(row.textContent).toContain('web-1');
    expect(row.textContent).toContain('deploy');
    expect(row.textContent).toContain(id);
    expect(within(table).queryByTestId('live-session-se-dave-1')).toBeNull();
    expect(screen.queryByTestId(`kill-session-${id}`)).toBeNull();
  });

  it('shows an administrator everyone’s, refreshed every 5 s', async () => {
    const { core } = await openSessions({ user: ADMIN });
    const row = await screen.findByTestId('live-session-se-dave-1');
    expect(row.textContent).toContain('dave');
    expect(row.textContent).toContain('app-prod-3');
    const before = calls(core, 'list_live_sessions').length;
    core.sessions.end('se-dave-1', 'closed');
    await waitFor(() => expect(screen.queryByTestId('live-session-se-dave-1')).toBeNull(), { timeout: 7_000 });
    expect(calls(core, 'list_live_sessions').length).toBeGreaterThan(before);
  }, 10_000);

  it('kill needs a reason of 3 to 500 characters and goes through the step-up', async () => {
    const { core } = await openSessions({ user: ADMIN });
    await fireEvent.click(await screen.findByTestId('kill-session-se-dave-1'));
    await fireEvent.click(screen.getByTestId('kill-confirm'));
    expect(screen.getByTestId('kill-reason-error').textContent).toContain('at least 3 characters');
    await type('kill-reason', 'no');
    await fireEvent.click(screen.getByTestId('kill-confirm'));
    expect(screen.getByTestId('kill-reason-error')).toBeTruthy();
    await type('kill-reason', 'x'.repeat(501));
    await fireEvent.click(screen.getByTestId('kill-confirm'));
    expect(screen.getByTestId('kill-reason-error').textContent).toContain('At most 500');
    expect(calls(core, 'prepare_kill_session')).toHaveLength(0);

    await type('kill-reason', 'Suspicious commands on app-prod-3');
    await fireEvent.click(screen.getByTestId('kill-confirm'));
    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('End a session');
    expect(within(modal).getByTestId('stepup-description').textContent).toContain('dave');
    expect(calls(core, 'prepare_kill_session')).toEqual([
      { input: { session_id: 'se-dave-1', reason: 'Suspicious commands on app-prod-3' } },
    ]);
    await approve();
    await waitFor(() => expect(screen.queryByTestId('live-session-se-dave-1')).toBeNull());
    expect(calls(core, 'confirm_kill_session')).toHaveLength(1);
    expect(core.sessions.sessions.find((s) => s.id === 'se-dave-1')?.end_reason).toBe('killed');
    expect(screen.getByTestId('sessions-notice').textContent).toContain('Ended dave’s session');
  });

  it('shows a kill refusal with its code', async () => {
    const { core } = await openSessions({ user: ADMIN });
    core.sessions.failNext('prepare_kill_session', { code: 'forbidden', message: 'not an administrator any more' });
    await fireEvent.click(await screen.findByTestId('kill-session-se-dave-1'));
    await type('kill-reason', 'Suspicious commands');
    await fireEvent.click(screen.getByTestId('kill-confirm'));
    const error = await screen.findByTestId('kill-error');
    expect(error.dataset['code']).toBe('forbidden');
  });

  it('shows a failure to load with its code', async () => {
    const { core } = renderSignedIn('#/access');
    core.sessions.failNext('list_live_sessions', { code: 'broker_unreachable', message: 'connection refused' });
    await fireEvent.click(await screen.findByTestId('nav-sessions'));
    const error = await screen.findByTestId('live-sessions-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
    expect(error.textContent).toContain('connection refused');
  });
});
