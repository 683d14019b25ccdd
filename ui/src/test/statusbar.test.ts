import { screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import type { BrokerState } from '../lib/ipc';
import { CONFIGURED, renderApp, settle, useFakeClock } from './helpers';

const grant = (remaining_ms: number) => ({ id: 'g-1', target: 'ssh prod-db-1', role: 'root', remaining_ms });

describe('status bar', () => {
  it('shows a loading state before the first status arrives', async () => {
    useFakeClock();
    renderApp({ delayMs: 200 });
    const broker = screen.getByTestId('broker-state');
    expect(broker.dataset['state']).toBe('loading');
    expect(broker.textContent).toContain('Checking broker');
    await settle(200);
    expect(broker.dataset['state']).toBe('unconfigured');
  });

  it.each<[BrokerState, string]>([
    ['connected', 'Connected · pawd 0.1.0 · 12 ms'],
    ['unreachable', 'Unreachable'],
    ['untrusted', 'Untrusted certificate'],
    ['incompatible', 'Incompatible broker'],
  ])('renders the %s broker state', async (state, text) => {
    useFakeClock();
    renderApp({ settings: CONFIGURED, brokerState: state as Exclude<BrokerState, 'unconfigured'> });
    await settle();
    const broker = screen.getByTestId('broker-state');
    expect(broker.dataset['state']).toBe(state);
    expect(broker.textContent).toContain(text);
    expect(broker.textContent).toContain('https://pawd.example.com');
  });

  it('renders the unconfigured state without a URL', async () => {
    useFakeClock();
    renderApp();
    await settle();
    const broker = screen.getByTestId('broker-state');
    expect(broker.dataset['state']).toBe('unconfigured');
    expect(broker.textContent?.trim()).toBe('Not configured');
  });

  it('shows an error state when the status call itself fails', async () => {
    useFakeClock();
    renderApp({ statusFailure: 'bridge gone' });
    await settle();
    const broker = screen.getByTestId('broker-state');
    expect(broker.dataset['state']).toBe('error');
    expect(broker.textContent).toContain('Status unavailable');
    expect(broker.textContent).toContain('internal');
  });

  it('polls every 5 s and recovers from an error', async () => {
    useFakeClock();
    const { core } = renderApp({ settings: CONFIGURED, brokerState: 'unreachable' });
    await settle();
    const before = core.calls.filter((c) => c.cmd === 'app_status').length;
    core.brokerState = 'connected';
    await settle(4_900);
    expect(screen.getByTestId('broker-state').dataset['state']).toBe('unreachable');
    await settle(200);
    expect(core.calls.filter((c) => c.cmd === 'app_status').length).toBe(before + 1);
    expect(screen.getByTestId('broker-state').dataset['state']).toBe('connected');
  });

  it('shows the user, or "Not signed in"', async () => {
    useFakeClock();
    const { core } = renderApp({ user: { name: 'Ada Admin', roles: ['admin', 'dba'] } });
    await settle();
    expect(screen.getByTestId('status-user').textContent).toContain('Ada Admin');
    expect(screen.getByTestId('status-user').textContent).toContain('admin, dba');
    core.user = null;
    await settle(5_000);
    expect(screen.getByTestId('status-user').textContent?.trim()).toBe('Not signed in');
  });

  it('shows "No active grant" without one', async () => {
    useFakeClock();
    renderApp();
    await settle();
    expect(screen.getByTestId('status-grant').textContent?.trim()).toBe('No active grant');
  });

  it('counts the grant down every second with the monotonic clock', async () => {
    useFakeClock();
    renderApp({ settings: CONFIGURED, grant: grant(14 * 60_000 + 32_000) });
    await settle();
    const el = screen.getByTestId('status-grant');
    expect(el.textContent).toContain('ssh prod-db-1 as root');
    expect(el.textContent).toContain('14:32 left');
    await settle(1_000);
    expect(el.textContent).toContain('14:31 left');
    await settle(2_000);
    expect(el.textContent).toContain('14:29 left');
    expect(el.classList.contains('grant--warning')).toBe(false);
    expect(el.classList.contains('grant--danger')).toBe(false);
  });

  it.each([
    ['back', -60 * 60_000],
    ['forward', 60 * 60_000],
  ])('ignores the wall clock jumping %s (only performance.now counts)', async (_dir, jump) => {
    useFakeClock();
    renderApp({ settings: CONFIGURED, grant: grant(10 * 60_000) });
    await settle();
    const time = () => screen.getByTestId('status-grant').querySelector('.time')?.textContent;
    expect(time()).toBe('10:00 left');
    vi.setSystemTime(Date.now() + jump);
    await settle(1_000);
    expect(time()).toBe('9:59 left');
  });

  it('takes the new remaining time from each poll', async () => {
    useFakeClock();
    const { core } = renderApp({ settings: CONFIGURED, grant: grant(10 * 60_000) });
    await settle();
    core.grant = grant(3 * 60_000); // e.g. the broker shortened it
    await settle(5_000); // next poll; the broker's clock has run 5 s since
    expect(screen.getByTestId('status-grant').querySelector('.time')?.textContent).toBe('2:55 left');
  });

  it('keeps counting smoothly across polls', async () => {
    useFakeClock();
    renderApp({ settings: CONFIGURED, grant: grant(14 * 60_000 + 32_000) });
    await settle();
    await settle(11_000);
    expect(screen.getByTestId('status-grant').querySelector('.time')?.textContent).toBe('14:21 left');
  });

  it('warns under 5 minutes and alarms under 1 minute', async () => {
    useFakeClock();
    renderApp({ settings: CONFIGURED, grant: grant(5 * 60_000 + 1_000) });
    await settle();
    const el = screen.getByTestId('status-grant');
    expect(el.dataset['level']).toBe('ok');
    expect(el.classList.contains('grant--warning')).toBe(false);
    await settle(2_000);
    expect(el.textContent).toContain('4:59 left');
    expect(el.dataset['level']).toBe('warning');
    expect(el.classList.contains('grant--warning')).toBe(true);
    expect(el.classList.contains('grant--danger')).toBe(false);
  });

  it('turns danger under 1 minute and says expired at zero', async () => {
    useFakeClock();
    renderApp({ settings: CONFIGURED, grant: grant(61_000) });
    await settle();
    const el = screen.getByTestId('status-grant');
    expect(el.classList.contains('grant--warning')).toBe(true);
    await settle(2_000);
    expect(el.textContent).toContain('0:59 left');
    expect(el.classList.contains('grant--danger')).toBe(true);
    expect(el.classList.contains('grant--warning')).toBe(false);
    await settle(2_000); // t = 4 s, still before the next poll
    expect(el.textContent).toContain('0:57 left');
  });

  it('says expired when the countdown reaches zero', async () => {
    useFakeClock();
    renderApp({ settings: CONFIGURED, grant: grant(2_000) });
    await settle();
    await settle(3_000);
    const el = screen.getByTestId('status-grant');
    expect(el.textContent).toContain('expired');
    expect(el.dataset['level']).toBe('expired');
    expect(el.classList.contains('grant--danger')).toBe(true);
  });

  it('shows the DEBUG BUILD badge only for debug builds', async () => {
    useFakeClock();
    const { core } = renderApp({ build: { version: '0.1.0', debug: true, virtual_key: false } });
    await settle();
    expect(screen.getByText('DEBUG BUILD')).toBeTruthy();
    core.build = { version: '0.1.0', debug: false, virtual_key: false };
    await settle(5_000);
    expect(screen.queryByText('DEBUG BUILD')).toBeNull();
  });
});
