import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { GrantView } from '../lib/ipc';
import { mockGrant } from '../lib/ipc/mock';
import { MIN, renderSignedIn, withDefaults } from './elevation-helpers';
import { settle, useFakeClock } from './helpers';

const ADMIN = { name: 'ada', roles: ['admin'] };
const DAVE = 'gr-dave-1';

/** Someone else's grant, active from 20 minutes ago until `endsInMs` after the broker's `now`. */
function othersGrant(now: number, endsInMs: number, fields: Partial<GrantView> & { id: string; user: string }): GrantView {
  return mockGrant({
    entitlement: 'db-prod-dba',
    target: 'db-prod-1',
    justification: 'INC-4800: reindex the ledger after the failover',
    ticket: 'INC-4800',
    state: 'active',
    created_at_ms: now - 25 * MIN,
    starts_at_ms: now - 20 * MIN,
    ends_at_ms: now + endsInMs,
    ...fields,
  });
}

function rows(): HTMLElement[] {
  return screen.queryAllByTestId('oversight-row');
}

function rowIds(): (string | undefined)[] {
  return rows().map((r) => r.dataset['grantId']);
}

function row(id: string): HTMLElement {
  const found = rows().find((r) => r.dataset['grantId'] === id);
  if (found === undefined) throw new Error(`no oversight row ${id}: ${rowIds().join(', ')}`);
  return found;
}

function revokes(core: ReturnType<typeof renderSignedIn>['core']): unknown[] {
  return core.calls.filter((c) => c.cmd === 'revoke_grant').map((c) => c.args);
}

function count(core: ReturnType<typeof renderSignedIn>['core'], cmd: string): number {
  return core.calls.filter((c) => c.cmd === cmd).length;
}

async function openApprovals(options: Parameters<typeof renderSignedIn>[1] = {}) {
  const result = renderSignedIn('#/approvals', { user: ADMIN, ...options });
  await screen.findByTestId('oversight-section');
  await waitFor(() => expect(screen.queryByTestId('oversight-loading')).toBeNull());
  return result;
}

async function openRevoke(id: string): Promise<HTMLInputElement> {
  await fireEvent.click(within(row(id)).getByTestId('oversight-revoke'));
  return within(row(id)).getByTestId<HTMLInputElement>('oversight-reason');
}

describe('approvals page: access you oversee', () => {
  it('lists other people’s approved and active grants, counting down on the broker’s clock', async () => {
    useFakeClock();
    renderSignedIn('#/approvals', {
      user: ADMIN,
      // The broker is three hours behind this workstation: only its clock gives 10:30.
      clockOffsetMs: -3 * 60 * MIN,
      grants: (now) => [
        mockGrant({
          id: 'gr-erin-1',
          user: 'erin',
          entitlement: 'app-prod-root',
          target: 'app-prod-1',
          state: 'approved',
          created_at_ms: now - MIN,
          starts_at_ms: now + 30 * MIN,
          ends_at_ms: now + 90 * MIN,
        }),
        othersGrant(now, 10 * MIN + 30_000, { id: 'gr-frank-1', user: 'frank' }),
        // The user's own grant, a pending request and an ended grant are not oversight.
        othersGrant(now, 20 * MIN, { id: 'gr-ada-1', user: 'ada' }),
        mockGrant({ id: 'gr-bob-9', user: 'bob', entitlement: 'db-prod-dba', state: 'pending', created_at_ms: now }),
        othersGrant(now, -MIN, { id: 'gr-carol-9', user: 'carol', state: 'revoked', end_reason: 'revoked by dave: x' }),
      ],
    });
    await settle();
    const section = screen.getByTestId('oversight-section');
    expect(section.textContent).toContain('Active access you oversee (2)');
    expect(rowIds()).toEqual(['gr-erin-1', 'gr-frank-1']);
    expect(rows().map((r) => r.dataset['state'])).toEqual(['approved', 'active']);

    const frank = row('gr-frank-1');
    expect(within(frank).getByTestId('oversight-user').textContent).toBe('frank');
    expect(frank.textContent).toContain('dba on db-prod-1');
    expect(within(frank).getByTestId('oversight-why').textContent).toContain('INC-4800: reindex the ledger after the failover');
    expect(within(frank).getByTestId('oversight-when').textContent).toContain('Ends in');
    expect(within(frank).getByTestId('oversight-countdown').textContent?.trim()).toBe('10:30');
    await settle(1_000);
    expect(within(row('gr-frank-1')).getByTestId('oversight-countdown').textContent?.trim()).toBe('10:29');

    const erin = row('gr-erin-1');
    expect(within(erin).getByTestId('oversight-when').textContent).toContain('Starts');
    expect(within(erin).queryByTestId('oversight-countdown')).toBeNull();
    expect(within(erin).getByTestId('oversight-revoke').textContent).toContain('Revoke…');
  });

  it('shows an approver only the entitlements they approve for', async () => {
    await openApprovals({
      user: { name: 'ada', roles: ['engineer'] },
      approverOf: ['db-prod-dba'],
      grants: withDefaults((now) => othersGrant(now, 30 * MIN, { id: 'gr-frank-1', user: 'frank' })),
    });
    // dave's app-prod-root grant (in the defaults) is not hers to oversee.
    expect(rowIds()).toEqual(['gr-frank-1']);
  });

  it('says when nobody holds access the user oversees', async () => {
    // Not an administrator and approving for nothing: dave's active grant is not hers to see.
    await openApprovals({ user: { name: 'ada', roles: ['engineer'] } });
    expect(screen.getByTestId('oversight-empty').textContent).toContain('Nobody holds access you oversee');
    expect(rows()).toHaveLength(0);
  });

  it('asks for a reason inline before revoking, and Escape backs out', async () => {
    const { core } = await openApprovals();
    const reason = await openRevoke(DAVE);
    await waitFor(() => expect(document.activeElement).toBe(reason));

    await fireEvent.click(within(row(DAVE)).getByTestId('oversight-confirm'));
    expect(within(row(DAVE)).getByTestId('oversight-reason-error').textContent).toContain('a revocation needs a reason');
    expect(reason.getAttribute('aria-invalid')).toBe('true');
    await fireEvent.input(reason, { target: { value: '   ' } });
    await fireEvent.click(within(row(DAVE)).getByTestId('oversight-confirm'));
    expect(within(row(DAVE)).getByTestId('oversight-reason-error')).toBeTruthy();
    expect(document.activeElement).toBe(reason);
    expect(revokes(core)).toEqual([]);

    await fireEvent.keyDown(reason, { key: 'Escape' });
    expect(within(row(DAVE)).queryByTestId('oversight-reason')).toBeNull();
    const button = within(row(DAVE)).getByTestId('oversight-revoke');
    await waitFor(() => expect(document.activeElement).toBe(button));
    expect(revokes(core)).toEqual([]);
    expect(core.elevation.grant(DAVE).state).toBe('active');
  });

  it('revokes with the reason, then the row leaves', async () => {
    const { core } = await openApprovals();
    const loads = count(core, 'list_oversight');
    const reason = await openRevoke(DAVE);
    await fireEvent.input(reason, { target: { value: ' Incident closed, access no longer needed ' } });
    await fireEvent.click(within(row(DAVE)).getByTestId('oversight-confirm'));
    await screen.findByTestId('oversight-empty');
    expect(revokes(core)).toEqual([{ input: { id: DAVE, reason: 'Incident closed, access no longer needed' } }]);
    expect(core.elevation.grant(DAVE).state).toBe('revoked');
    expect(core.elevation.grant(DAVE).end_reason).toBe('revoked by ada: Incident closed, access no longer needed');
    expect(count(core, 'list_oversight')).toBe(loads + 1);
    expect(screen.getByTestId('approvals-notice').textContent).toContain('Revoked dave’s access to root on app-prod-3');
    expect(screen.queryByTestId('oversight-error')).toBeNull();
  });

  it('refreshes on live events, like the inbox', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/approvals', { user: ADMIN });
    await settle();
    expect(rowIds()).toEqual([DAVE]);
    const loads = count(core, 'list_oversight');
    const now = core.elevation.now();
    // Someone else approved erin's request: the broker tells this approver about it somehow.
    core.elevation.grants.unshift(othersGrant(now, 45 * MIN, { id: 'gr-erin-2', user: 'erin', created_at_ms: now }));
    core.elevation.requestAs('frank');
    await settle(1_000);
    expect(count(core, 'list_oversight')).toBe(loads + 1);
    expect(rowIds()).toEqual(['gr-erin-2', DAVE]);
  });

  it('asks the broker again when a countdown ends, and the expired grant leaves', async () => {
    useFakeClock();
    renderSignedIn('#/approvals', {
      user: ADMIN,
      grants: (now) => [othersGrant(now, 3_000, { id: 'gr-frank-1', user: 'frank' })],
    });
    await settle();
    expect(rowIds()).toEqual(['gr-frank-1']);
    await settle(4_000);
    expect(rows()).toHaveLength(0);
    expect(screen.getByTestId('oversight-empty')).toBeTruthy();
  });

  it('shows a refusal above the list when the policy no longer lets the user revoke', async () => {
    const { core } = await openApprovals({
      user: { name: 'ada', roles: ['engineer'] },
      approverOf: ['app-prod-root'],
    });
    // Removed from the approver group after the list loaded.
    core.elevation.approverOf = [];
    await fireEvent.input(await openRevoke(DAVE), { target: { value: 'Leaving the team' } });
    await fireEvent.click(within(row(DAVE)).getByTestId('oversight-confirm'));
    const error = await screen.findByTestId('oversight-error');
    expect(error.dataset['code']).toBe('forbidden');
    expect(error.textContent).toContain('Could not revoke dave’s access to root on app-prod-3.');
    expect(error.textContent).toContain('The access policy does not allow this.');
    expect(error.textContent).toContain('only an approver of this entitlement or an admin can revoke');
    // The refreshed list drops what the user no longer oversees; the error stays.
    await screen.findByTestId('oversight-empty');
    expect(screen.getByTestId('oversight-error').dataset['code']).toBe('forbidden');
    expect(core.elevation.grant(DAVE).state).toBe('active');
  });

  it('shows a conflict when the grant ended in the meantime', async () => {
    const { core } = await openApprovals();
    Object.assign(core.elevation.grant(DAVE), { state: 'revoked', end_reason: 'revoked by erin: done' });
    await fireEvent.input(await openRevoke(DAVE), { target: { value: 'Incident closed' } });
    await fireEvent.click(within(row(DAVE)).getByTestId('oversight-confirm'));
    const error = await screen.findByTestId('oversight-error');
    expect(error.dataset['code']).toBe('conflict');
    expect(error.textContent).toContain('has changed in the meantime');
    await screen.findByTestId('oversight-empty');
    expect(screen.getByTestId('approvals-notice').textContent?.trim()).toBe('');
  });

  it('shows a load failure with a retry', async () => {
    const { core } = renderSignedIn('#/approvals', { user: ADMIN });
    core.elevation.failNext('list_oversight', { code: 'broker_unreachable', message: 'connection refused' });
    const error = await screen.findByTestId('oversight-load-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
    // The inbox is not held up by it.
    await screen.findByTestId('inbox-item');
    await fireEvent.click(within(error).getByText('Retry'));
    await waitFor(() => expect(rowIds()).toEqual([DAVE]));
    expect(screen.queryByTestId('oversight-load-error')).toBeNull();
  });
});
