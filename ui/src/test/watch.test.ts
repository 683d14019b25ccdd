import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { MockCore } from '../lib/ipc/mock';
import { mockSession } from '../lib/ipc/mock';
import { MIN, renderSignedIn, type } from './elevation-helpers';

/**
 * Live oversight: watching someone else's session read-only. xterm.js cannot run in jsdom, so
 * the terminal module is a plain-text fake that records how it was created and what was asked
 * of it; the page, the pane and the mock core (with its watch stream) are real.
 */
const fake = vi.hoisted(() => {
  interface Fake {
    text: string;
    options: { readOnly?: boolean };
    dataHandlers: number;
    keyHandlers: number;
    resets: number;
    size: { cols: number; rows: number } | null;
    disposed: boolean;
  }
  const terminals: Fake[] = [];
  return { terminals };
});

vi.mock('../lib/terminal/xterm', () => ({
  createTerminal: (_host: HTMLElement, options: { readOnly?: boolean } = {}) => {
    const t = {
      text: '',
      options,
      dataHandlers: 0,
      keyHandlers: 0,
      resets: 0,
      size: null as { cols: number; rows: number } | null,
      disposed: false,
    };
    fake.terminals.push(t);
    const decoder = new TextDecoder();
    return {
      write(data: Uint8Array, done?: () => void) {
        t.text += decoder.decode(data, { stream: true });
        done?.();
      },
      onData() {
        t.dataHandlers++;
        return () => undefined;
      },
      onKey() {
        t.keyHandlers++;
      },
      fit: () => ({ cols: 100, rows: 30 }),
      lines: () =>
        t.text
          // eslint-disable-next-line no-control-regex
          .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
          .replace(/\r/g, '')
          .split('\n')
          .slice(-30),
      selection: () => '',
      disableInput() {},
      reset() {
        t.resets++;
        t.text = '';
      },
      resize(cols: number, rows: number) {
        t.size = { cols, rows };
      },
      focus() {},
      dispose() {
        t.disposed = true;
      },
    };
  },
}));

const ADMIN = { name: 'ada', roles: ['engineer', 'admin'] };
const ENGINEER = { name: 'ada', roles: ['engineer'] };

/** dave's SSH session (the approver may watch it), and erin's database session. */
function colleagues(now: number) {
  return [
    mockSession({
      id: 'se-dave-1',
      user: 'dave',
      target: 'app-prod-3',
      role: 'root',
      started_at_ms: now - 12 * MIN,
      grant_ends_at_ms: now + 40 * MIN,
      may_watch: true,
    }),
    mockSession({
      id: 'se-erin-1',
      user: 'erin',
      grant_id: 'gr-erin-1',
      target_kind: 'postgres',
      target: 'db-prod-1',
      role: 'dba',
      started_at_ms: now - 5 * MIN,
      grant_ends_at_ms: now + 20 * MIN,
      may_watch: true,
    }),
  ];
}

async function openSessions(options: Parameters<typeof renderSignedIn>[1] = {}) {
  fake.terminals.length = 0;
  const result = renderSignedIn('#/sessions', { sessions: colleagues, ...options });
  await screen.findByTestId('sessions-page');
  return result;
}

function calls(core: MockCore, cmd: string): unknown[] {
  return core.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
}

/** Starts watching dave's session from the live list; returns the pane once the screen is in. */
async function watchDave(): Promise<HTMLElement> {
  await fireEvent.click(await screen.findByTestId('watch-session-se-dave-1'));
  const pane = await screen.findByTestId('watch-pane');
  await waitFor(() => expect(pane.dataset['phase']).toBe('watching'));
  return pane;
}

async function mirrorShows(text: string): Promise<void> {
  await waitFor(() => expect(screen.getByTestId('watch-text').textContent).toContain(text));
}

describe('watching a live session', () => {
  it('offers Watch on others’ SSH sessions only: to an admin, and to an approver', async () => {
    await openSessions({ user: ADMIN });
    const list = await screen.findByTestId('live-sessions');
    await within(list).findByTestId('live-session-se-dave-1');
    expect(within(list).getByTestId('watch-session-se-dave-1').textContent?.trim()).toBe('Watch');
    // A database session has no terminal to watch.
    expect(within(list).getByTestId('live-session-se-erin-1')).toBeTruthy();
    expect(within(list).queryByTestId('watch-session-se-erin-1')).toBeNull();
  });

  it('shows an approver the sessions they approve, with Watch; others see neither', async () => {
    await openSessions({ user: ENGINEER });
    const list = await screen.findByTestId('live-sessions');
    await within(list).findByTestId('live-session-se-dave-1');
    expect(within(list).getByTestId('watch-session-se-dave-1')).toBeTruthy();
    expect(screen.getByRole('heading', { name: /Live sessions \(yours and those you approve\)/ })).toBeTruthy();
    // Not an approver of dave's entitlement: neither the session nor a button.
    const { core } = await openSessionsAgain({
      user: ENGINEER,
      sessions: (now) => colleagues(now).map((s) => ({ ...s, may_watch: false })),
    });
    await waitFor(() => expect(calls(core, 'list_live_sessions').length).toBeGreaterThan(0));
    expect(screen.queryByTestId('live-session-se-dave-1')).toBeNull();
    expect(screen.queryByTestId('watch-session-se-dave-1')).toBeNull();
  });

  it('watches read-only: title, badge, the user is told, the screen then the output', async () => {
    const { core } = await openSessions({ user: ENGINEER });
    core.sessions.screens.set('se-dave-1', 'root@app-prod-3:~# ');
    const pane = await watchDave();
    expect(calls(core, 'watch_session')).toEqual([
      { input: { session_id: 'se-dave-1' }, channel: expect.anything() },
    ]);
    expect(within(pane).getByTestId('watch-title').textContent).toBe('Watching dave on app-prod-3 (read-only)');
    expect(within(pane).getByTestId('watch-readonly').textContent).toContain('read-only');
    expect(within(pane).getByTestId('watch-note').textContent).toContain('dave sees that you are watching');
    // Read-only by construction: xterm without stdin, and nothing listens for keys or data.
    const term = fake.terminals.at(-1);
    expect(term?.options.readOnly).toBe(true);
    expect(term?.dataHandlers).toBe(0);
    expect(term?.keyHandlers).toBe(0);
    expect(term?.size).toEqual({ cols: 100, rows: 30 });
    await mirrorShows('root@app-prod-3:~#');

    core.sessions.watchOutput('se-dave-1', 'echo watched-$((40+2))\r\nwatched-42\r\n');
    await mirrorShows('watched-42');
    core.sessions.watchResize('se-dave-1', 132, 43);
    await waitFor(() => expect(term?.size).toEqual({ cols: 132, rows: 43 }));
    expect(within(pane).getByTestId('watch-size').textContent).toContain('132×43');
    // The list's button says it is being watched.
    expect((screen.getByTestId('watch-session-se-dave-1') as HTMLButtonElement).disabled).toBe(true);
    // Typing into the pane sends nothing anywhere.
    await fireEvent.keyDown(screen.getByTestId('watch-terminal'), { key: 'a' });
    expect(calls(core, 'terminal_input')).toHaveLength(0);
  });

  it('resets the terminal when the broker draws the screen again', async () => {
    const { core } = await openSessions({ user: ENGINEER });
    await watchDave();
    const term = fake.terminals.at(-1);
    const before = term?.resets ?? 0;
    core.sessions.watchOutput('se-dave-1', 'old line\r\n');
    await mirrorShows('old line');
    core.sessions.watchRestart('se-dave-1', 'fresh screen');
    await mirrorShows('fresh screen');
    expect(term?.resets).toBe(before + 1);
    expect(screen.getByTestId('watch-text').textContent).not.toContain('old line');
  });

  it('Stop ends the watch and gives the focus back to the list', async () => {
    const { core } = await openSessions({ user: ENGINEER });
    await watchDave();
    await fireEvent.click(screen.getByTestId('watch-stop'));
    await waitFor(() => expect(screen.queryByTestId('watch-pane')).toBeNull());
    expect(calls(core, 'stop_watch')).toEqual([{ input: { session_id: 'se-dave-1' } }]);
    expect(core.sessions.watches.size).toBe(0);
    expect(fake.terminals.at(-1)?.disposed).toBe(true);
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('watch-session-se-dave-1')));
  });

  it('leaving the page stops the watch', async () => {
    const { core } = await openSessions({ user: ENGINEER });
    await watchDave();
    await fireEvent.click(screen.getByTestId('nav-access'));
    await waitFor(() => expect(calls(core, 'stop_watch')).toHaveLength(1));
    expect(core.sessions.watches.size).toBe(0);
  });

  it('shows the end with its reason when the session ends', async () => {
    const { core } = await openSessions({ user: ENGINEER });
    const pane = await watchDave();
    core.sessions.end('se-dave-1', 'killed', 'ended by carol: suspicious activity');
    const ended = await within(pane).findByTestId('watch-ended');
    expect(ended.dataset['reason']).toBe('killed');
    expect(ended.textContent).toContain('An administrator ended (killed) this session.');
    expect(ended.textContent).toContain('suspicious activity');
    expect(pane.dataset['phase']).toBe('ended');
    expect(within(pane).getByTestId('watch-stop').textContent?.trim()).toBe('Close');
    // Closing an ended watch asks nothing of the core.
    await fireEvent.click(within(pane).getByTestId('watch-stop'));
    await waitFor(() => expect(screen.queryByTestId('watch-pane')).toBeNull());
    expect(calls(core, 'stop_watch')).toHaveLength(0);
  });

  it.each([
    ['forbidden', 'nobody watches their own session', 'You may not watch this session.'],
    ['not_found', 'no such live session', 'This session is no longer live.'],
    [
      'conflict',
      'this session is carried by broker b-2 on pawd-2.example.com: watch it through that broker',
      'cannot be watched through this broker',
    ],
  ] as const)('shows a %s refusal with the broker’s message', async (code, message, lead) => {
    const { core } = await openSessions({ user: ENGINEER });
    core.sessions.failNext('watch_session', { code, message });
    await fireEvent.click(await screen.findByTestId('watch-session-se-dave-1'));
    const error = await screen.findByTestId('watch-error');
    expect(error.dataset['code']).toBe(code);
    expect(error.textContent).toContain(message);
    expect(error.textContent).toContain(lead);
    expect(screen.getByTestId('watch-pane').dataset['phase']).toBe('failed');
    expect(screen.queryByTestId('watch-kill')).toBeNull();
  });

  it('offers an administrator End session, through the kill step-up', async () => {
    const { core } = await openSessions({ user: ADMIN });
    const pane = await watchDave();
    await fireEvent.click(within(pane).getByTestId('watch-kill'));
    await type('kill-reason', 'Dropping tables without a change');
    await fireEvent.click(within(pane).getByTestId('kill-confirm'));
    await fireEvent.click(await screen.findByTestId('stepup-approve'));
    const ended = await within(pane).findByTestId('watch-ended');
    expect(ended.dataset['reason']).toBe('killed');
    expect(calls(core, 'prepare_kill_session')).toEqual([
      { input: { session_id: 'se-dave-1', reason: 'Dropping tables without a change' } },
    ]);
    expect(core.sessions.sessions.find((s) => s.id === 'se-dave-1')?.end_reason).toBe('killed');
    await waitFor(() => expect(screen.getByTestId('sessions-notice').textContent).toContain('Ended dave’s session'));
    expect(within(pane).queryByTestId('kill-form')).toBeNull();
  });

  it('an approver who is not an admin gets no End session', async () => {
    await openSessions({ user: ENGINEER });
    const pane = await watchDave();
    expect(within(pane).queryByTestId('watch-kill')).toBeNull();
  });

  it('sign-out ends the watch', async () => {
    const { core } = await openSessions({ user: ENGINEER });
    await watchDave();
    core.sessions.endWatches('signed_out', 'you signed out');
    const ended = await screen.findByTestId('watch-ended');
    expect(ended.dataset['reason']).toBe('signed_out');
    expect(ended.textContent).toContain('You signed out');
  });
});

/** Renders a second app (the first is cleaned up by the test's end) with other options. */
async function openSessionsAgain(options: Parameters<typeof renderSignedIn>[1]) {
  const { cleanup } = await import('@testing-library/svelte');
  const { resetMockCore } = await import('../lib/ipc/mock');
  cleanup();
  resetMockCore();
  return openSessions(options);
}
