import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { MOCK_ENTITLEMENTS } from '../lib/ipc/mock';
import { activeGrant, grantRow, MIN, renderSignedIn, type } from './elevation-helpers';
import { settle, useFakeClock } from './helpers';

const EMERGENCY = 'Primary out of disk, paging failed';

async function openBreakGlass() {
  const result = renderSignedIn('#/access', { grants: () => [] });
  await fireEvent.click(await screen.findByTestId('break-glass-open'));
  return result;
}

describe('break-glass', () => {
  it('is offered apart from the request form, only for entitlements that allow it', async () => {
    renderSignedIn('#/access', { entitlements: MOCK_ENTITLEMENTS.filter((e) => e.break_glass_max_secs === null) });
    await screen.findByTestId('request-form');
    expect(screen.queryByTestId('break-glass-open')).toBeNull();
    expect(screen.queryByTestId('break-glass-section')).toBeNull();
  });

  it('explains what it sets off before anything else', async () => {
    await openBreakGlass();
    const form = screen.getByTestId('break-glass-form');
    const text = form.textContent ?? '';
    expect(text).toContain('audit record');
    expect(text).toContain('Every administrator is notified');
    expect(text).toMatch(/Two other people must\s+review/);
    expect(screen.getByTestId<HTMLInputElement>('break-glass-confirm').checked).toBe(false);
    await waitFor(() => expect(document.activeElement).toBe(form));
  });

  it('needs the acknowledgement, a justification and a duration within the break-glass limit', async () => {
    const { core } = await openBreakGlass();
    await type('break-glass-target', 'db-prod-1');
    await type('break-glass-duration', '61');
    await fireEvent.click(screen.getByTestId('break-glass-submit'));
    expect(screen.getByTestId('break-glass-confirm-error').textContent).toContain('Confirm that you understand');
    expect(screen.getByTestId('break-glass-justification-error').textContent).toContain('A justification is required');
    expect(screen.getByTestId('break-glass-duration-error').textContent).toContain('at most 60 minutes');
    expect(core.calls.some((c) => c.cmd === 'prepare_elevation')).toBe(false);
  });

  it('goes through the break-glass step-up, then shows the banner on every page until released', async () => {
    const { core } = await openBreakGlass();
    await type('break-glass-target', 'db-prod-1');
    await type('break-glass-duration', '30');
    await type('break-glass-justification', EMERGENCY);
    await fireEvent.click(screen.getByTestId('break-glass-confirm'));
    await fireEvent.click(screen.getByTestId('break-glass-submit'));

    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('Break-glass access');
    expect(within(modal).getByTestId('stepup-break-glass').textContent).toContain('every administrator is notified');
    expect(screen.getByTestId('stepup-description').textContent).toBe(
      `BREAK GLASS: dba on db-prod-1 for 30 min without approval. Reason: ${EMERGENCY}`,
    );
    expect(core.calls.filter((c) => c.cmd === 'prepare_elevation').map((c) => c.args)).toEqual([
      {
        action: {
          op: 'break_glass',
          entitlement: 'db-prod-dba',
          target: 'db-prod-1',
          role: 'dba',
          duration_secs: 1800,
          justification: EMERGENCY,
        },
      },
    ]);
    expect(screen.queryByTestId('break-glass-banner')).toBeNull();
    await fireEvent.click(screen.getByTestId('stepup-approve'));

    const banner = await screen.findByTestId('break-glass-banner');
    expect(banner.textContent?.replace(/\s+/g, ' ').trim()).toMatch(
      /^BREAK-GLASS ACCESS ACTIVE — dba on db-prod-1, ends in (30:00|29:5\d) — every action is audited and will be reviewed$/,
    );
    expect(screen.getByTestId('break-glass-result').textContent).toContain('Every administrator has been notified');
    const id = banner.dataset['grantId'] ?? '';
    expect(grantRow(id).dataset['state']).toBe('active');
    expect(within(grantRow(id)).getByTestId('grant-review').textContent).toContain('0 of 2');

    // Above every area, not only Access.
    await fireEvent.click(screen.getByTestId('nav-keys'));
    expect(screen.getByTestId('page-keys')).toBeTruthy();
    expect(screen.getByTestId('break-glass-banner')).toBeTruthy();
    await fireEvent.click(screen.getByTestId('nav-access'));

    await fireEvent.click(within(await waitFor(() => grantRow(id))).getByTestId('grant-release'));
    await waitFor(() => expect(screen.queryByTestId('break-glass-banner')).toBeNull());
  });

  it('shows the banner for an active break-glass grant at start-up, counting down', async () => {
    useFakeClock();
    renderSignedIn('#/sessions', {
      grants: (now) => [activeGrant(now, 10 * MIN, { break_glass: true, target: 'db-prod-1', role: 'dba' })],
    });
    await settle();
    const countdown = screen.getByTestId('break-glass-banner-countdown');
    expect(countdown.textContent).toBe('10:00');
    await settle(3_000);
    expect(countdown.textContent).toBe('9:57');
  });

  it('shows no banner for an ordinary active grant or an ended break-glass one', async () => {
    renderSignedIn('#/access', {
      grants: (now) => [
        activeGrant(now, 10 * MIN),
        activeGrant(now, 10 * MIN, { id: 'gr-ada-2', break_glass: true, state: 'released', ended_at_ms: now }),
      ],
    });
    await screen.findAllByTestId('grant-row');
    expect(screen.queryByTestId('break-glass-banner')).toBeNull();
  });

  it('shows a refusal in the panel', async () => {
    const { core } = await openBreakGlass();
    core.prepareFailure = { code: 'forbidden', message: 'this entitlement does not allow break-glass' };
    await type('break-glass-target', 'db-prod-1');
    await type('break-glass-justification', EMERGENCY);
    await fireEvent.click(screen.getByTestId('break-glass-confirm'));
    await fireEvent.click(screen.getByTestId('break-glass-submit'));
    const error = await screen.findByTestId('break-glass-error');
    expect(error.dataset['code']).toBe('forbidden');
    expect(error.textContent).toContain('this entitlement does not allow break-glass');
    expect(screen.queryByTestId('break-glass-banner')).toBeNull();
  });
});
