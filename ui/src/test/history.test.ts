import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SessionHistoryQuery } from '../lib/ipc';
import { mockCast, mockHistoryEntry, type MockCore } from '../lib/ipc/mock';
import { CONFIGURED, renderApp } from './helpers';

/**
 * asciinema-player needs layout and WebAssembly that jsdom does not have: the player module is
 * replaced by a fake with the same interface. The page and the mock core are real.
 */
const fake = vi.hoisted(() => {
  interface FakePlayer {
    cast: string;
    element: HTMLElement;
    disposed: boolean;
    state: ((s: 'loading' | 'ready' | 'playing' | 'paused' | 'ended') => void) | null;
    /** Marker indexes sought, in order. */
    seeks: number[];
  }
  const players: FakePlayer[] = [];
  return { players };
});

vi.mock('../lib/replay/player', () => ({
  createPlayer: (element: HTMLElement, cast: string) => {
    const p = { cast, element, disposed: false, state: null as ((s: 'loading' | 'ready' | 'playing' | 'paused' | 'ended') => void) | null, seeks: [] as number[] };
    fake.players.push(p);
    return Promise.resolve({
      onState(listener: (s: 'loading' | 'ready' | 'playing' | 'paused' | 'ended') => void) {
        p.state = listener;
        listener('ready');
      },
      seekMarker(index: number) {
        p.seeks.push(index);
      },
      dispose() {
        p.disposed = true;
      },
    });
  },
  IDLE_TIME_LIMIT: 2,
}));

const HANA = { name: 'hana', roles: ['helpdesk'] };
const ADA = { name: 'ada', roles: [] };

function rowIds(): string[] {
  return screen
    .queryAllByTestId(/^history-row-/)
    .map((r) => (r.dataset['testid'] ?? '').replace('history-row-', ''));
}

async function openHistory(user = HANA, extra: Parameters<typeof renderApp>[0] = {}) {
  const result = renderApp({ settings: CONFIGURED, user, ...extra }, '#/history');
  await screen.findByTestId('history-page');
  return result;
}

function lastQuery(core: MockCore): SessionHistoryQuery {
  const calls = core.calls.filter((c) => c.cmd === 'session_history');
  return (calls[calls.length - 1]?.args as { input: SessionHistoryQuery }).input;
}

afterEach(() => {
  fake.players.length = 0;
  vi.restoreAllMocks();
});

describe('session history (help-desk)', () => {
  it('shows everyone’s sessions newest first, with who, where and how each ended', async () => {
    await openHistory();
    await waitFor(() => expect(rowIds()).toEqual(['se-live-1', 'se-ada-2', 'se-eve-1', 'se-dave-0', 'se-ada-1']));
    expect(screen.getByTestId('history-scope').textContent).toContain('Everyone’s');
    const ada = screen.getByTestId('history-row-se-ada-2');
    expect(ada.textContent).toContain('ada');
    expect(ada.textContent).toContain('web-1');
    expect(ada.textContent).toContain('as root');
    expect(ada.textContent).toContain('12 min');
    expect(screen.getByTestId('history-reason-se-ada-2').textContent).toContain('Closed by the user');
    expect(screen.getByTestId('history-reason-se-dave-0').textContent).toContain('Ended by an administrator');
    expect(screen.getByTestId('history-reason-se-live-1').textContent).toContain('Running');
    // Only finished SSH recordings can be replayed.
    expect(screen.getByTestId('history-replay-se-ada-2')).toBeTruthy();
    expect(screen.queryByTestId('history-replay-se-live-1')).toBeNull();
    expect(screen.queryByTestId('history-replay-se-eve-1')).toBeNull();
    expect(screen.getByTestId('history-row-se-eve-1').textContent).toContain('Not recorded');
  });

  it('filters by user, target, how it ended and time', async () => {
    const { core } = await openHistory();
    await waitFor(() => expect(rowIds()).toHaveLength(5));

    await fireEvent.input(screen.getByTestId('history-filter-user'), { target: { value: 'ADA' } });
    await waitFor(() => expect(rowIds()).toEqual(['se-ada-2', 'se-ada-1']));
    expect(lastQuery(core).user).toBe('ADA');

    await fireEvent.change(screen.getByTestId('history-filter-reason'), { target: { value: 'closed' } });
    await waitFor(() => expect(rowIds()).toEqual(['se-ada-2']));
    expect(lastQuery(core).reason).toBe('closed');

    await fireEvent.click(screen.getByTestId('history-filter-clear'));
    await waitFor(() => expect(rowIds()).toHaveLength(5));
    expect(lastQuery(core)).toMatchObject({ user: null, target: null, reason: null, from_ms: null, until_ms: null, offset: 0 });

    await fireEvent.input(screen.getByTestId('history-filter-target'), { target: { value: 'db-' } });
    await waitFor(() => expect(rowIds()).toEqual(['se-eve-1']));
    await fireEvent.input(screen.getByTestId('history-filter-target'), { target: { value: '' } });

    const before = Date.now();
    await fireEvent.change(screen.getByTestId('history-filter-time'), { target: { value: '24h' } });
    await waitFor(() => expect(rowIds()).toEqual(['se-live-1', 'se-ada-2', 'se-eve-1']));
    const q = lastQuery(core);
    expect(q.from_ms).toBeGreaterThanOrEqual(before - 24 * 3_600_000);
    expect(q.until_ms).toBeNull();

    await fireEvent.change(screen.getByTestId('history-filter-time'), { target: { value: 'custom' } });
    const setTime = async (id: string, value: string) => {
      const input = screen.getByTestId(id);
      await fireEvent.input(input, { target: { value } });
      await fireEvent.change(input);
    };
    await setTime('history-filter-from', '2030-01-02T00:00');
    await setTime('history-filter-until', '2030-01-01T00:00');
    expect((await screen.findByRole('alert')).textContent).toContain('before its start');

    await setTime('history-filter-until', '2030-01-03T00:00');
    expect(await screen.findByTestId('history-empty')).toBeTruthy();
    expect(screen.getByTestId('history-empty').textContent).toContain('No sessions match these filters');
  });

  it('pages through a long history', async () => {
    const now = Date.now();
    const history = Array.from({ length: 60 }, (_, i) =>
      mockHistoryEntry({ id: `se-${String(i).padStart(2, '0')}`, user: 'ada', started_at_ms: now - i * 60_000, ended_at_ms: now - i * 60_000 + 1000, end_reason: 'closed' }),
    );
    const { core } = await openHistory(HANA, { history });
    await waitFor(() => expect(rowIds()).toHaveLength(50));
    expect(rowIds()[0]).toBe('se-00');
    await fireEvent.click(screen.getByTestId('history-next'));
    await waitFor(() => expect(rowIds()).toHaveLength(10));
    expect(rowIds()[0]).toBe('se-50');
    expect(lastQuery(core).offset).toBe(50);
    expect((screen.getByTestId('history-next') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(screen.getByTestId('history-prev'));
    await waitFor(() => expect(rowIds()).toHaveLength(50));
  });

  it('a user without the help-desk role sees only their own sessions', async () => {
    await openHistory(ADA);
    await waitFor(() => expect(rowIds()).toEqual(['se-ada-2', 'se-ada-1']));
    expect(screen.getByTestId('history-scope').textContent).toContain('Your own');
    expect(screen.queryByTestId('history-filter-user')).toBeNull();
  });

  it('shows loading, then an error with a retry, then the list', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: HANA, delayMs: 20 }, '#/history');
    core.history.fail('session_history', { code: 'broker_unreachable', message: 'connection refused' });
    expect(await screen.findByTestId('history-loading')).toBeTruthy();
    const error = await screen.findByTestId('history-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
    expect(error.textContent).toContain('connection refused');
    await fireEvent.click(within(error).getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(rowIds()).toHaveLength(5));
    expect(screen.queryByTestId('history-error')).toBeNull();
  });

  it('says so when there is no session yet', async () => {
    await openHistory(HANA, { history: [] });
    const empty = await screen.findByTestId('history-empty');
    expect(empty.textContent).toContain('No brokered sessions yet');
  });
});

describe('replay', () => {
  it('replays a recording in the player, as the broker masked it, and closes', async () => {
    const { core } = await openHistory();
    core.history.casts.set('se-ada-2', mockCast());
    await fireEvent.click(await screen.findByTestId('history-replay-se-ada-2'));
    const pane = await screen.findByTestId('replay-pane');
    expect(pane.textContent).toContain('Replay: ada on web-1 as root');
    const player = await screen.findByTestId('replay-player');
    await waitFor(() => expect(fake.players).toHaveLength(1));
    const p = fake.players[0];
    if (p === undefined) throw new Error('no player');
    expect(p.element).toBe(player);
    expect(p.cast).toBe(mockCast());
    expect(p.cast).toContain('••••');
    await waitFor(() => expect(player.dataset['state']).toBe('ready'));
    p.state?.('playing');
    await waitFor(() => expect(player.dataset['state']).toBe('playing'));
    expect(screen.getByTestId('replay-verified').textContent).toContain('Matches its audit record');
    // The output, the input and the marker that names it each had the token.
    expect(screen.getByTestId('replay-masked').textContent).toContain('3 passages masked');
    expect(core.history.replayed).toEqual(['se-ada-2']);
    expect(core.calls.find((c) => c.cmd === 'session_recording')?.args).toEqual({ input: { session_id: 'se-ada-2' } });
    expect(document.activeElement?.id).toBe('replay-title');

    await fireEvent.click(screen.getByTestId('replay-close'));
    await waitFor(() => expect(screen.queryByTestId('replay-pane')).toBeNull());
    expect(p.disposed).toBe(true);
  });

  it('lists the recording’s markers as chapters and moves the player to the one chosen', async () => {
    await openHistory();
    await fireEvent.click(await screen.findByTestId('history-replay-se-ada-2'));
    const chapters = await screen.findByTestId('replay-chapters');
    expect(within(chapters).getByRole('heading', { name: 'Chapters' })).toBeTruthy();
    const entries = within(chapters).getAllByRole('button');
    expect(entries.map((e) => [e.dataset['decision'], e.querySelector('.at')?.textContent, e.querySelector('.pill')?.textContent, e.querySelector('.label')?.textContent])).toEqual([
      ['warn', '0:00', 'warn', 'systemctl restart worker'],
      ['flagged', '0:01', 'flagged', 'export TOKEN=••••'],
      ['deny', '0:03', 'deny', 'rm -rf /var/lib/worker'],
    ]);
    // Twelve quiet minutes play back as two seconds; the session's own time is in the tooltip.
    expect(entries[2]?.title).toContain('12:00 into the session');
    await waitFor(() => expect(fake.players).toHaveLength(1));
    const p = fake.players[0];
    if (p === undefined) throw new Error('no player');
    await waitFor(() => expect((entries[2] as HTMLButtonElement).disabled).toBe(false));
    await fireEvent.click(entries[2] as HTMLElement);
    // Native buttons: in the tab order, and Enter or Space choose them.
    expect(entries.every((e) => e.tagName === 'BUTTON' && e.tabIndex === 0)).toBe(true);
    (entries[0] as HTMLElement).focus();
    expect(document.activeElement).toBe(entries[0]);
    await fireEvent.click(entries[0] as HTMLElement);
    expect(p.seeks).toEqual([2, 0]);
  });

  it('shows no chapter list for a recording without markers', async () => {
    const { core } = await openHistory();
    const plain = mockCast()
      .split('\n')
      .filter((l) => !l.includes('"m"'))
      .join('\n');
    core.history.casts.set('se-ada-2', plain);
    await fireEvent.click(await screen.findByTestId('history-replay-se-ada-2'));
    await screen.findByTestId('replay-player');
    await waitFor(() => expect(fake.players).toHaveLength(1));
    expect(screen.queryByTestId('replay-chapters')).toBeNull();
    expect(screen.queryByText('Chapters')).toBeNull();
  });

  it('replaying another session disposes the first player', async () => {
    await openHistory();
    await fireEvent.click(await screen.findByTestId('history-replay-se-ada-2'));
    await waitFor(() => expect(fake.players).toHaveLength(1));
    await fireEvent.click(screen.getByTestId('history-replay-se-dave-0'));
    await waitFor(() => expect(fake.players).toHaveLength(2));
    expect(fake.players[0]?.disposed).toBe(true);
    expect(fake.players[1]?.disposed).toBe(false);
    expect(screen.getByTestId('replay-pane').textContent).toContain('dave on app-prod-3');
  });

  it('a tampered recording is refused with its reason and never reaches the player', async () => {
    const { core } = await openHistory();
    core.history.fail('session_recording', {
      code: 'recording_tampered',
      message: 'the recording was changed since the session ended: it does not match the SHA-256 in the audit log',
    });
    await fireEvent.click(await screen.findByTestId('history-replay-se-ada-2'));
    const error = await screen.findByTestId('replay-error');
    expect(error.dataset['code']).toBe('recording_tampered');
    expect(error.textContent).toContain('changed or deleted after the session ended');
    expect(screen.queryByTestId('replay-player')).toBeNull();
    expect(fake.players).toHaveLength(0);
    await fireEvent.click(screen.getByTestId('replay-close'));
    await waitFor(() => expect(screen.queryByTestId('replay-pane')).toBeNull());
  });

  it('Escape closes the replay', async () => {
    await openHistory();
    await fireEvent.click(await screen.findByTestId('history-replay-se-ada-2'));
    await screen.findByTestId('replay-player');
    await fireEvent.keyDown(window, { key: 'Escape' });
    await waitFor(() => expect(screen.queryByTestId('replay-pane')).toBeNull());
  });
});
