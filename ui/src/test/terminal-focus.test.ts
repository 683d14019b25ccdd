import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { MockCore } from '../lib/ipc/mock';
import { activeGrant, MIN, renderSignedIn } from './elevation-helpers';
import { settle, useFakeClock } from './helpers';

/**
 * The terminal takes the keyboard when it is opened or its tab is chosen. xterm.js cannot run
 * in jsdom: the fake puts a textarea in the terminal's element (as xterm does) and focuses it.
 */
const fake = vi.hoisted(() => ({ focused: [] as number[], count: 0 }));

vi.mock('../lib/terminal/xterm', () => ({
  createTerminal: (host: HTMLElement) => {
    const index = fake.count++;
    const input = document.createElement('textarea');
    input.dataset['fakeXterm'] = String(index);
    host.append(input);
    return {
      write(_data: Uint8Array, done?: () => void) {
        done?.();
      },
      onData: () => () => {},
      onKey() {},
      fit: () => ({ cols: 100, rows: 30 }),
      lines: () => [],
      selection: () => '',
      disableInput() {},
      focus() {
        fake.focused.push(index);
        input.focus();
      },
      dispose() {
        input.remove();
      },
    };
  },
}));

function grantButton(id: string): HTMLButtonElement {
  const button = screen.getAllByTestId<HTMLButtonElement>('session-open').find((b) => b.dataset['grantId'] === id);
  if (button === undefined) throw new Error(`no open button for ${id}`);
  return button;
}

async function openTerminal(): Promise<string> {
  const before = screen.queryAllByRole('tab').length;
  await fireEvent.click(await waitFor(() => grantButton('gr-ada-1')));
  await fireEvent.click(await screen.findByTestId('stepup-approve'));
  await waitFor(() => expect(screen.getAllByRole('tab')).toHaveLength(before + 1));
  const tab = screen.getAllByRole('tab').find((t) => t.getAttribute('aria-selected') === 'true');
  return tab?.id.replace('terminal-tab-', '') ?? '';
}

function xtermInput(id: string): HTMLElement {
  const input = screen.getByTestId(`terminal-panel-${id}`).querySelector<HTMLElement>('textarea[data-fake-xterm]');
  if (input === null) throw new Error(`no terminal input in ${id}`);
  return input;
}

async function open(grants = (now: number) => [activeGrant(now, 30 * MIN)]): Promise<MockCore> {
  fake.focused.length = 0;
  fake.count = 0;
  const { core } = renderSignedIn('#/sessions', { grants });
  await screen.findByTestId('sessions-page');
  return core;
}

describe('terminal focus', () => {
  it('a newly opened terminal takes the keyboard, not its tab', async () => {
    await open();
    const id = await openTerminal();
    await waitFor(() => expect(document.activeElement).toBe(xtermInput(id)));
    // Still there once the step-up dialog has given focus back (it would only to an empty focus).
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(document.activeElement).toBe(xtermInput(id));
    expect(document.activeElement?.getAttribute('role')).not.toBe('tab');
  });

  it('choosing a tab gives its terminal the keyboard; arrow keys keep it in the tab list', async () => {
    await open();
    const first = await openTerminal();
    const second = await openTerminal();
    await waitFor(() => expect(document.activeElement).toBe(xtermInput(second)));

    const firstTab = screen.getByTestId(`terminal-tab-${first}`);
    firstTab.focus();
    await fireEvent.click(firstTab);
    await waitFor(() => expect(document.activeElement).toBe(xtermInput(first)));
    expect(firstTab.getAttribute('aria-selected')).toBe('true');

    // Clicking the tab that is already selected brings the keyboard back too.
    firstTab.focus();
    await fireEvent.click(firstTab);
    await waitFor(() => expect(document.activeElement).toBe(xtermInput(first)));

    firstTab.focus();
    const focusedBefore = fake.focused.length;
    await fireEvent.keyDown(firstTab, { key: 'ArrowRight' });
    const secondTab = screen.getByTestId(`terminal-tab-${second}`);
    await waitFor(() => expect(document.activeElement).toBe(secondTab));
    expect(secondTab.getAttribute('aria-selected')).toBe('true');
    expect(fake.focused.length).toBe(focusedBefore);
  });

  it('coming back to Sessions does not pull the keyboard into the terminal', async () => {
    await open();
    await openTerminal();
    await fireEvent.click(screen.getByTestId('nav-access'));
    const focusedBefore = fake.focused.length;
    await fireEvent.click(screen.getByTestId('nav-sessions'));
    await screen.findByTestId('terminals');
    expect(fake.focused.length).toBe(focusedBefore);
  });
});

describe('“ending soon” follows the grant’s length', () => {
  const FIVE_MIN_GRANT = (now: number) => [activeGrant(now, 4 * MIN, { duration_secs: 300, starts_at_ms: now - MIN })];

  it('a 5-minute grant’s terminal shows the broker’s warning only in its last minute', async () => {
    const core = await open(FIVE_MIN_GRANT);
    const id = await openTerminal();
    const panel = screen.getByTestId(`terminal-panel-${id}`);
    core.sessions.warn(id, 4 * MIN);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(within(panel).queryByTestId('terminal-warning')).toBeNull();
    core.sessions.warn(id, 59_000);
    expect(await within(panel).findByTestId('terminal-warning')).toBeTruthy();
  });

  it('a 5-minute grant’s countdown is not styled “ending soon” at its start', async () => {
    await open(FIVE_MIN_GRANT);
    const row = await screen.findByTestId('session-grant');
    const countdown = within(row).getByTestId('session-grant-countdown');
    await waitFor(() => expect(countdown.textContent?.trim()).toMatch(/^[34]:\d\d$/));
    expect(countdown.dataset['level']).toBe('ok');
  });

  it('no “Access ending soon” toast at the start of a 5-minute grant; one for an 8-hour grant in its last 5 minutes', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/access', {
      grants: (now) => [
        activeGrant(now, 4 * MIN + 50_000, { duration_secs: 300, starts_at_ms: now - 10_000 }),
        activeGrant(now, 4 * MIN + 50_000, { id: 'gr-ada-8h', duration_secs: 8 * 3600, target: 'web-2' }),
      ],
    });
    await settle();
    core.elevation.emit('grant_warning', core.elevation.grant('gr-ada-1'), 'deploy on web-1 ends in 5 min');
    core.elevation.emit('grant_warning', core.elevation.grant('gr-ada-8h'), 'deploy on web-2 ends in 5 min');
    await settle(1_000);
    const toasts = screen.queryAllByTestId('live-toast');
    expect(toasts).toHaveLength(1);
    expect(toasts[0]?.textContent).toContain('Access ending soon');
    expect(toasts[0]?.textContent).toContain('web-2');
  });
});
