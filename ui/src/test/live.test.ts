import { screen, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { MockCore } from '../lib/ipc/mock';
import { activeGrant, grantRow, MIN, renderSignedIn } from './elevation-helpers';
import { CONFIGURED, renderApp, settle, useFakeClock } from './helpers';

function count(core: MockCore, cmd: string): number {
  return core.calls.filter((c) => c.cmd === cmd).length;
}

function toasts(): HTMLElement[] {
  return screen.queryAllByTestId('live-toast');
}

describe('live updates', () => {
  it('polls live_events every second while signed in, passing back the last seq', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/access', { grants: (now) => [activeGrant(now, 30 * MIN)] });
    await settle();
    expect(core.calls.filter((c) => c.cmd === 'live_events').map((c) => c.args)).toEqual([{ since: 0 }]);
    core.elevation.emit('grant_warning', core.elevation.grant('gr-ada-1'), 'one');
    core.elevation.emit('grant_warning', core.elevation.grant('gr-ada-1'), 'two');
    await settle(1_000);
    await settle(1_000);
    await settle(1_000);
    expect(core.calls.filter((c) => c.cmd === 'live_events').map((c) => c.args)).toEqual([
      { since: 0 },
      { since: 0 },
      { since: 2 },
      { since: 2 },
    ]);
  });

  it('does not poll while nobody is signed in, and stops at sign-out', async () => {
    useFakeClock();
    const { core } = renderApp({ settings: CONFIGURED });
    await settle(3_000);
    expect(count(core, 'live_events')).toBe(0);
    expect(count(core, 'list_grants')).toBe(0);

    core.user = { name: 'ada', roles: [] };
    await settle(5_000); // the next status poll sees the user
    await settle(2_000);
    const polled = count(core, 'live_events');
    expect(polled).toBeGreaterThanOrEqual(2);
    core.user = null;
    await settle(5_000);
    const after = count(core, 'live_events');
    await settle(5_000);
    expect(count(core, 'live_events')).toBe(after);
  });

  it('refreshes the inbox and shows a toast when a colleague asks, then dismisses it after 8 s', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/approvals', { grants: () => [] });
    await settle();
    expect(screen.getByTestId('inbox-empty')).toBeTruthy();
    const request = core.elevation.requestAs('erin', { duration_secs: 3600 });
    await settle(1_000);
    expect(screen.getAllByTestId('inbox-item').map((i) => i.dataset['requestId'])).toEqual([request.id]);
    const [toast] = toasts();
    expect(toast?.dataset['kind']).toBe('request_new');
    expect(toast?.textContent).toContain('New request');
    expect(toast?.textContent).toContain('erin asks for dba on db-prod-3 for 60 min');
    const region = screen.getByTestId('live-toasts');
    expect(region.getAttribute('role')).toBe('status');
    expect(region.getAttribute('aria-live')).toBe('polite');
    await settle(7_000);
    expect(toasts()).toHaveLength(1);
    await settle(1_500);
    expect(toasts()).toHaveLength(0);
  });

  it('moves a pending request to active when colleagues approve it, with a toast', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/access', {
      grants: (now) => [
        {
          ...activeGrant(now, 0, { entitlement: 'db-prod-dba', role: 'dba', target: 'db-prod-1' }),
          state: 'pending',
          starts_at_ms: null,
          ends_at_ms: null,
          approvals_missing: 2,
        },
      ],
    });
    await settle();
    expect(grantRow('gr-ada-1').dataset['state']).toBe('pending');
    core.elevation.decideAs('carol', 'gr-ada-1', true, 'ok');
    await settle(1_000);
    expect(within(grantRow('gr-ada-1')).getByTestId('grant-waiting').textContent).toContain('1 more approval');
    core.elevation.decideAs('dave', 'gr-ada-1', true, 'ok');
    await settle(1_000);
    expect(grantRow('gr-ada-1').dataset['state']).toBe('active');
    expect(within(grantRow('gr-ada-1')).getByTestId('grant-countdown').textContent?.trim()).toBe('59:59'); // active since the approval, 1 s ago
    expect(toasts().map((t) => t.dataset['kind'])).toEqual(['request_decided', 'request_decided', 'grant_started']);
    expect(toasts()[1]?.textContent).toContain('dave approved your request for dba on db-prod-1');
    expect(screen.getByTestId('status-grant').textContent).toContain('db-prod-1');
  });

  it('makes the 5-minute warning prominent and keeps it longer', async () => {
    useFakeClock();
    renderSignedIn('#/sessions', { grants: (now) => [activeGrant(now, 5 * MIN + 1_500)] });
    await settle();
    expect(toasts()).toHaveLength(0);
    await settle(2_000);
    const [toast] = toasts();
    expect(toast?.dataset['kind']).toBe('grant_warning');
    expect(toast?.classList.contains('prominent')).toBe(true);
    expect(toast?.classList.contains('warning')).toBe(true);
    expect(toast?.textContent).toContain('deploy on web-1 ends in 5 min');
    await settle(10_000);
    expect(toasts()).toHaveLength(1);
    await settle(6_000);
    expect(toasts()).toHaveLength(0);
  });

  it('announces break-glass loudly', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/approvals', { grants: () => [] });
    await settle();
    const grant = core.elevation.requestAs('erin', { break_glass: true, state: 'active' });
    core.elevation.emit('break_glass', grant, 'BREAK-GLASS: erin took dba on db-prod-3 for 60 min: disk full');
    await settle(1_000);
    const toast = toasts().find((t) => t.dataset['kind'] === 'break_glass');
    expect(toast?.classList.contains('prominent')).toBe(true);
    expect(toast?.classList.contains('danger')).toBe(true);
    expect(screen.getAllByTestId('review-item').map((r) => r.dataset['grantId'])).toEqual([grant.id]);
  });

  it('re-fetches every 10 s instead while the live connection is down', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/approvals', { liveConnected: false });
    await settle();
    const grants = count(core, 'list_grants');
    const inbox = count(core, 'approvals_inbox');
    await settle(9_500);
    expect(count(core, 'list_grants')).toBe(grants);
    await settle(1_000);
    expect(count(core, 'list_grants')).toBe(grants + 1);
    expect(count(core, 'approvals_inbox')).toBe(inbox + 1);
    core.elevation.liveConnected = true;
    await settle(20_000);
    expect(count(core, 'list_grants')).toBe(grants + 1);
    expect(toasts()).toHaveLength(0);
  });

  it('does not re-fetch on a timer while the live connection is up', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/approvals');
    await settle();
    const inbox = count(core, 'approvals_inbox');
    await settle(25_000);
    expect(count(core, 'approvals_inbox')).toBe(inbox);
  });

  it('re-fetches on resync without a toast', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/access', { grants: (now) => [activeGrant(now, 30 * MIN)] });
    await settle();
    const grants = count(core, 'list_grants');
    core.elevation.emit('resync', core.elevation.grant('gr-ada-1'), 'missed events');
    await settle(1_000);
    expect(count(core, 'list_grants')).toBe(grants + 1);
    expect(toasts()).toHaveLength(0);
  });
});
