import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { confirmHoldDecision, listHolds, prepareHoldDecision, type LiveEvent } from '../lib/ipc';
import { installMockCore, mockHold, type MockCore } from '../lib/ipc/mock';
import { HOLDS_POLL_MS, HoldsStore } from '../lib/stores/holds.svelte';
import type { LiveStore } from '../lib/stores/live.svelte';
import { activeGrant, MIN, renderSignedIn } from './elevation-helpers';
import { settle, useFakeClock } from './helpers';

/**
 * xterm.js needs layout and a canvas that jsdom does not have: the terminal module is replaced
 * by a plain-text fake with the same interface (as in sessions.test.ts). The pages, the stores
 * and the mock core are real.
 */
const fake = vi.hoisted(() => ({ terminals: [] as { text: string; data: Set<(data: string) => void> }[] }));

vi.mock('../lib/terminal/xterm', () => ({
  createTerminal: () => {
    const t = { text: '', data: new Set<(data: string) => void>() };
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
      onKey() {},
      fit: () => ({ cols: 100, rows: 30 }),
      lines: () => t.text.replace(/\r/g, '').split('\n').slice(-30),
      selection: () => '',
      disableInput() {},
      focus() {},
      dispose() {},
    };
  },
}));

function typeInTerminal(data: string): void {
  const t = fake.terminals[0];
  if (t === undefined) throw new Error('no terminal');
  for (const listener of t.data) listener(data);
}

function calls(core: MockCore, cmd: string): unknown[] {
  return core.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
}

function held(): HTMLElement[] {
  return screen.queryAllByTestId('held-command');
}

async function approveStepUp(): Promise<void> {
  await fireEvent.click(await screen.findByTestId('stepup-approve'));
  await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
}

/** The Sessions page with a terminal open on ada's SSH grant on web-1; returns its session id. */
async function openTerminal(options: Parameters<typeof renderSignedIn>[1] = {}): Promise<{ core: MockCore; id: string }> {
  fake.terminals.length = 0;
  const { core } = renderSignedIn('#/sessions', { grants: (now) => [activeGrant(now, 30 * MIN)], ...options });
  await screen.findByTestId('sessions-page');
  const open = await waitFor(() => {
    const b = screen.getAllByTestId('session-open').find((e) => e.dataset['grantId'] === 'gr-ada-1');
    if (b === undefined) throw new Error('no open button');
    return b;
  });
  await fireEvent.click(open);
  await approveStepUp();
  const id = [...core.sessions.terminals.keys()][0];
  if (id === undefined) throw new Error('no terminal in the core');
  await waitFor(() => expect(fake.terminals[0]?.text).toContain('Connected to web-1'));
  return { core, id };
}

describe('held commands on the Sessions page (the user’s own)', () => {
  it('renders nothing while nothing is held', async () => {
    const { core } = await openTerminal();
    await waitFor(() => expect(calls(core, 'list_holds').length).toBeGreaterThan(0));
    expect(screen.queryByTestId('held-commands-own')).toBeNull();
    expect(screen.queryByTestId('held-commands-own-loading')).toBeNull();
  });

  it('shows a held rm as it happens and runs it after the user’s own step-up', async () => {
    const { core, id } = await openTerminal();
    typeInTerminal('rm /srv/www/cache.db\r');
    await waitFor(() => expect(fake.terminals[0]?.text).toContain('needs a security-key step-up'));

    // The live event brings the card; it shows the command, where, what it needs and the time left.
    const card = await screen.findByTestId('held-commands-own', {}, { timeout: 3_000 });
    const [item] = held();
    expect(item?.dataset['needs']).toBe('step_up');
    expect(within(item as HTMLElement).getByTestId('held-command-text').textContent).toBe('rm /srv/www/cache.db');
    expect(within(item as HTMLElement).getByTestId('held-command-text').tagName).toBe('CODE');
    expect(within(item as HTMLElement).getByTestId('held-command-where').textContent).toContain('web-1');
    expect(within(item as HTMLElement).getByTestId('held-command-needs').textContent).toContain('security-key step-up');
    expect(within(item as HTMLElement).getByTestId('held-command-countdown').textContent?.trim()).toMatch(/^(2:00|1:5\d)$/);
    expect(within(card).queryByTestId('held-command-approve')).toBeNull();
    expect(within(card).queryByTestId('held-command-refuse')).toBeNull();

    // Keyboard reachable: a real, enabled button that names what it does.
    const run = within(card).getByTestId<HTMLButtonElement>('held-command-run');
    expect(run.tagName).toBe('BUTTON');
    expect(run.disabled).toBe(false);
    expect(run.getAttribute('aria-label')).toContain('rm /srv/www/cache.db');
    run.focus();
    expect(document.activeElement).toBe(run);

    await fireEvent.click(run);
    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('Held command');
    const words = within(modal).getByTestId('stepup-description').textContent ?? '';
    expect(words).toContain('`rm /srv/www/cache.db`');
    expect(words).toContain('web-1');
    expect(words).toContain(id);
    // Only the hold's id and the answer cross to the core, never the command text.
    const holdId = item?.dataset['holdId'];
    expect(calls(core, 'prepare_hold_decision')).toEqual([{ input: { hold_id: holdId, approve: true } }]);
    await approveStepUp();

    await waitFor(() => expect(screen.queryByTestId('held-commands-own')).toBeNull());
    expect(calls(core, 'confirm_hold_decision')).toHaveLength(1);
    expect(screen.getByTestId('sessions-notice').textContent).toContain('Released `rm /srv/www/cache.db`');
    await waitFor(() => expect(fake.terminals[0]?.text).toContain('`rm /srv/www/cache.db` released by ada'));
  });

  it('a cancelled step-up leaves the command held', async () => {
    const { core } = await openTerminal();
    typeInTerminal('rm /tmp/x\r');
    await fireEvent.click(await screen.findByTestId('held-command-run', {}, { timeout: 3_000 }));
    await fireEvent.click(await screen.findByTestId('stepup-cancel'));
    await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
    expect(calls(core, 'confirm_hold_decision')).toHaveLength(0);
    expect(held()).toHaveLength(1);
    expect(core.holds.holds[0]?.state).toBe('pending');
  });

  it('says a command waiting for someone else’s approval waits, with nothing to press', async () => {
    await openTerminal();
    typeInTerminal('shutdown -r now\r');
    const item = await screen.findByTestId('held-command', {}, { timeout: 3_000 });
    expect(item.dataset['needs']).toBe('approve');
    expect(within(item).getByTestId('held-command-waiting').textContent).toContain('another person’s approval');
    expect(within(item).queryByRole('button')).toBeNull();
  });

  it('drops a command nobody confirmed when its time runs out, and the terminal says why', async () => {
    await openTerminal({ holdSecs: 1 });
    typeInTerminal('rm /tmp/x\r');
    await screen.findByTestId('held-command', {}, { timeout: 3_000 });
    await waitFor(() => expect(screen.queryByTestId('held-commands-own')).toBeNull(), { timeout: 5_000 });
    await waitFor(() => expect(fake.terminals[0]?.text).toContain('`rm /tmp/x` no decision in time'));
  }, 10_000);

  it('shows a refusal to prepare in the hold, with its code', async () => {
    const { core } = await openTerminal();
    typeInTerminal('rm /tmp/x\r');
    const run = await screen.findByTestId('held-command-run', {}, { timeout: 3_000 });
    core.holds.failNext('prepare_hold_decision', { code: 'conflict', message: 'the hold is released' });
    await fireEvent.click(run);
    const error = await screen.findByTestId('held-command-error');
    expect(error.dataset['code']).toBe('conflict');
    expect(error.textContent).toContain('the hold is released');
    expect(screen.queryByTestId('stepup-modal')).toBeNull();
  });

  it('shows a failure to load with its code, and retries', async () => {
    const { core } = renderSignedIn('#/access');
    core.holds.failNext('list_holds', { code: 'broker_unreachable', message: 'connection refused' });
    await fireEvent.click(await screen.findByTestId('nav-sessions'));
    const error = await screen.findByTestId('held-commands-own-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
    expect(error.textContent).toContain('Could not check for held commands.');
    await fireEvent.click(within(error).getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(screen.queryByTestId('held-commands-own')).toBeNull());
  });

  it('does not show colleagues’ holds among the user’s own', async () => {
    const { core } = await openTerminal();
    core.holds.holdAs('dave', 'shutdown -h now');
    await waitFor(() => expect(calls(core, 'list_holds').length).toBeGreaterThan(1), { timeout: 3_000 });
    expect(screen.queryByTestId('held-commands-own')).toBeNull();
  });
});

describe('held commands in the Approvals inbox (other people’s)', () => {
  async function openApprovals(options: Parameters<typeof renderSignedIn>[1] = {}) {
    const result = renderSignedIn('#/approvals', options);
    await screen.findByTestId('approvals-page');
    return result;
  }

  it('lists a colleague’s held command as it happens, and approves it through the step-up', async () => {
    const { core } = await openApprovals();
    await waitFor(() => expect(calls(core, 'list_holds').length).toBeGreaterThan(0));
    expect(screen.queryByTestId('held-commands-approve')).toBeNull();
    const hold = core.holds.holdAs('dave', 'shutdown -r now');

    const card = await screen.findByTestId('held-commands-approve', {}, { timeout: 3_000 });
    expect(card.textContent).toContain('Commands waiting for your approval (1)');
    const [item] = held();
    expect(within(item as HTMLElement).getByTestId('held-command-where').textContent).toContain('dave’s session on app-prod-3');
    expect(within(item as HTMLElement).getByTestId('held-command-needs').textContent).toContain('second person’s approval');
    expect(within(card).queryByTestId('held-command-run')).toBeNull();

    await fireEvent.click(within(card).getByTestId('held-command-approve'));
    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('Held command approval');
    const words = within(modal).getByTestId('stepup-description').textContent ?? '';
    expect(words).toContain('Let run `shutdown -r now`');
    expect(words).toContain('app-prod-3');
    expect(words).toContain('se-dave-1');
    expect(calls(core, 'prepare_hold_decision')).toEqual([{ input: { hold_id: hold.id, approve: true } }]);
    await approveStepUp();
    await waitFor(() => expect(screen.queryByTestId('held-commands-approve')).toBeNull());
    expect(core.holds.holds[0]).toMatchObject({ state: 'released', decided_by: 'ada' });
    expect(screen.getByTestId('approvals-notice').textContent).toContain('Let `shutdown -r now` run in dave’s session');
  });

  it('refuses one through the step-up', async () => {
    const { core } = await openApprovals({
      holds: (t) => [mockHold({ id: 'h-dave', user: 'dave', command: 'shutdown -h now', created_at: t, expires_at: t + 90_000 })],
    });
    const item = await screen.findByTestId('held-command');
    await fireEvent.click(within(item).getByTestId('held-command-refuse'));
    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-description').textContent).toContain('Refuse `shutdown -h now`');
    expect(calls(core, 'prepare_hold_decision')).toEqual([{ input: { hold_id: 'h-dave', approve: false } }]);
    await approveStepUp();
    await waitFor(() => expect(held()).toHaveLength(0));
    expect(core.holds.holds[0]?.state).toBe('refused');
    expect(screen.getByTestId('approvals-notice').textContent).toContain('Refused `shutdown -h now`');
  });

  it('does not offer the user’s own held commands for approval', async () => {
    await openApprovals({
      holds: (t) => [mockHold({ id: 'h-ada', user: 'ada', command: 'shutdown -h now', created_at: t })],
    });
    await waitFor(() => expect(screen.queryByTestId('held-commands-approve-loading')).toBeNull());
    expect(screen.queryByTestId('held-commands-approve')).toBeNull();
  });
});

describe('held commands: ipc and store', () => {
  it('sends the exact names and argument keys the Rust side expects', async () => {
    const core = installMockCore({ user: { name: 'ada', roles: [] } });
    const hold = core.holds.holdAs('bob', 'shutdown -h now');
    const list = await listHolds();
    expect(list.holds.map((h) => h.id)).toEqual([hold.id]);
    expect(typeof list.now_ms).toBe('number');
    const prompt = await prepareHoldDecision({ hold_id: hold.id, approve: false });
    expect(prompt.purpose).toBe('approve_command');
    const decided = await confirmHoldDecision(prompt.id);
    expect(decided.state).toBe('refused');
    await expect(confirmHoldDecision(prompt.id)).rejects.toMatchObject({ code: 'challenge_invalid' });
    await expect(prepareHoldDecision({ hold_id: 'nope', approve: true })).rejects.toMatchObject({ code: 'bad_request' });
    expect(core.calls.map((c) => [c.cmd, c.args])).toEqual([
      ['list_holds', {}],
      ['prepare_hold_decision', { input: { hold_id: hold.id, approve: false } }],
      ['confirm_hold_decision', { id: prompt.id }],
      ['confirm_hold_decision', { id: prompt.id }],
      ['prepare_hold_decision', { input: { hold_id: 'nope', approve: true } }],
    ]);
  });

  it('refreshes on held-command events and the fallback, not on other events', async () => {
    const core = installMockCore({ user: { name: 'ada', roles: [] } });
    const subscribed: { listener: ((events: LiveEvent[]) => void) | null } = { listener: null };
    const live = {
      onRefresh(listener: (events: LiveEvent[]) => void) {
        subscribed.listener = listener;
        return () => (subscribed.listener = null);
      },
    } as unknown as LiveStore;
    const refresh = (events: LiveEvent[]): void => subscribed.listener?.(events);
    const store = new HoldsStore();
    store.start(live);
    await waitFor(() => expect(store.holds).toEqual([]));
    const event = (kind: string): LiveEvent => ({ kind, grant_id: 'g', state: 'active', message: '', at_ms: 0 });
    const count = () => calls(core, 'list_holds').length;
    refresh([event('grant_started')]);
    await Promise.resolve();
    expect(count()).toBe(1);
    core.holds.holdAs('bob', 'shutdown -h now');
    refresh([event('command_held')]);
    await waitFor(() => expect(store.holds).toHaveLength(1));
    refresh([]);
    await waitFor(() => expect(count()).toBe(3));
    store.stop();
    expect(subscribed.listener).toBeNull();
    expect(store.holds).toBeNull();
  });

  it('counts down by the broker’s clock and asks again every few seconds only while a hold is pending', async () => {
    useFakeClock();
    const core = installMockCore({ user: { name: 'ada', roles: [] }, clockOffsetMs: -3_600_000 });
    const store = new HoldsStore();
    store.start();
    await settle();
    expect(store.holds).toEqual([]);
    await settle(3 * HOLDS_POLL_MS);
    expect(calls(core, 'list_holds')).toHaveLength(1); // nothing pending: no polling

    const hold = core.holds.holdAs('bob', 'shutdown -h now'); // 120 s by the broker's clock, an hour behind ours
    await store.load();
    const first = store.remainingMs(store.holds?.[0] ?? hold);
    expect(first).toBe(120_000);
    expect(store.totalMs(hold)).toBe(120_000);
    await settle(HOLDS_POLL_MS);
    expect(calls(core, 'list_holds')).toHaveLength(3);
    expect(store.remainingMs(store.holds?.[0] ?? hold)).toBe(120_000 - HOLDS_POLL_MS);
    store.stop();
  });
});
