import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { MOCK_ENTITLEMENTS } from '../lib/ipc/mock';
import {
  activeGrant,
  fillRequest,
  grantRow,
  grantRows,
  JUSTIFICATION,
  MIN,
  renderSignedIn,
  type,
  withDefaults,
} from './elevation-helpers';
import { renderApp, settle, useFakeClock } from './helpers';

async function openAccess(options: Parameters<typeof renderSignedIn>[1] = {}) {
  const result = renderSignedIn('#/access', options);
  await screen.findByTestId('request-form');
  await screen.findAllByTestId(/^grants-(empty|current|past)$/);
  return result;
}

function preparedActions(core: ReturnType<typeof renderSignedIn>['core']): unknown[] {
  return core.calls.filter((c) => c.cmd === 'prepare_elevation').map((c) => c.args);
}

async function approveStepUp(): Promise<void> {
  await fireEvent.click(await screen.findByTestId('stepup-approve'));
  await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
}

describe('access page: request form', () => {
  it('keeps the placeholder while signed out', async () => {
    renderApp({}, '#/access');
    const page = await screen.findByTestId('page-access');
    expect(page.textContent).toContain('Coming in a later release');
    expect(screen.queryByTestId('access-page')).toBeNull();
  });

  it('offers the entitlements with their description, targets, role, longest duration and rule', async () => {
    await openAccess();
    const select = screen.getByTestId<HTMLSelectElement>('request-entitlement');
    expect([...select.options].map((o) => o.value)).toEqual(MOCK_ENTITLEMENTS.map((e) => e.id));
    const details = screen.getByTestId('request-entitlement-details');
    expect(details.textContent).toContain('Restart services on the web tier');
    expect(details.textContent).toContain('web-*');
    expect(details.textContent).toContain('deploy');
    expect(details.textContent).toContain('1 h');
    expect(screen.getByTestId('request-rule').textContent).toContain('approved automatically');
    expect(screen.queryByTestId('request-ticket')).toBeNull();

    await fireEvent.change(select, { target: { value: 'db-prod-dba' } });
    expect(details.textContent).toContain('db-prod-*');
    expect(details.textContent).toContain('4 h');
    expect(details.textContent).toContain('INC-*');
    expect(screen.getByTestId('request-rule').textContent).toContain('needs 2 distinct approvers from dba-leads');
    expect(screen.getByTestId<HTMLInputElement>('request-ticket').placeholder).toBe('INC-*');
    expect(screen.getByTestId<HTMLInputElement>('request-duration').max).toBe('240');
  });

  it('shows the command rules the session will apply, in order, before anyone asks', async () => {
    await openAccess();
    const select = screen.getByTestId<HTMLSelectElement>('request-entitlement');
    expect(screen.getByTestId('request-commands').textContent).toContain('not restricted');
    await fireEvent.change(select, { target: { value: 'app-prod-root' } });
    const commands = screen.getByTestId('request-commands');
    const items = [...commands.querySelectorAll('li')];
    expect(items.map((li) => li.dataset['action'])).toEqual(['deny', 'step_up', 'approve', 'allow']);
    expect(items[0]?.textContent).toContain('rm with -r -f');
    expect(items[0]?.textContent).toContain('refused');
    expect(items[0]?.textContent).toContain('deleting trees is done by the release tool');
    expect(items[1]?.textContent).toContain('needs your security key');
    expect(items[2]?.textContent).toContain('needs a second person');
    expect(items[3]?.textContent).toContain('anything else');
    expect(commands.textContent).toContain('Strict');
  });

  it('an auto-approved request becomes active at once, with a live countdown', async () => {
    const { core } = await openAccess({ grants: () => [] });
    expect(screen.getByTestId('grants-empty')).toBeTruthy();
    await fillRequest({ target: 'web-1', minutes: '30', justification: JUSTIFICATION });
    await fireEvent.click(screen.getByTestId('request-submit'));

    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('Access request');
    expect(screen.getByTestId('stepup-description').textContent).toBe(
      `Request deploy on web-1 for 30 min. Reason: ${JUSTIFICATION}`,
    );
    expect(preparedActions(core)).toEqual([
      {
        action: {
          op: 'request',
          entitlement: 'web-deploy',
          target: 'web-1',
          role: 'deploy',
          duration_secs: 1800,
          justification: JUSTIFICATION,
          ticket: null,
          start_at_ms: null,
        },
      },
    ]);
    const id = [...core.elevation.pending.keys()][0];
    await approveStepUp();
    expect(core.calls.filter((c) => c.cmd === 'confirm_elevation')).toEqual([{ cmd: 'confirm_elevation', args: { id } }]);

    const result = await screen.findByTestId('request-result');
    expect(result.dataset['state']).toBe('active');
    expect(result.textContent).toContain('deploy on web-1');
    expect(result.textContent).toContain('Active until');
    const row = await waitFor(() => grantRows()[0] ?? Promise.reject(new Error('no row')));
    expect(row.dataset['state']).toBe('active');
    expect(within(row).getByTestId('grant-countdown').textContent?.trim()).toMatch(/^(30:00|29:5\d)$/);
    expect(within(row).getByTestId('grant-release')).toBeTruthy();
    expect(screen.getByTestId<HTMLTextAreaElement>('request-justification').value).toBe('');
  });

  it('a quorum request waits for approvals, with the missing count and a cancel button', async () => {
    const { core } = await openAccess({ grants: () => [] });
    await fillRequest({
      entitlement: 'db-prod-dba',
      target: 'db-prod-1',
      minutes: '90',
      justification: 'INC-4711 vacuum the orders table',
      ticket: 'INC-4711',
    });
    await fireEvent.click(screen.getByTestId('request-submit'));
    await screen.findByTestId('stepup-modal');
    expect(screen.getByTestId('stepup-description').textContent).toBe(
      'Request dba on db-prod-1 for 1 h 30 min (ticket INC-4711). Reason: INC-4711 vacuum the orders table',
    );
    expect(preparedActions(core)).toMatchObject([{ action: { ticket: 'INC-4711', duration_secs: 5400 } }]);
    await approveStepUp();

    const result = await screen.findByTestId('request-result');
    expect(result.dataset['state']).toBe('pending');
    expect(result.textContent).toContain('Waiting for 2 approvals');
    const row = await waitFor(() => grantRows()[0] ?? Promise.reject(new Error('no row')));
    expect(row.dataset['state']).toBe('pending');
    expect(within(row).getByTestId('grant-waiting').textContent).toContain('Waiting for 2 more approvals');
    expect(within(row).getByTestId('grant-cancel')).toBeTruthy();
    expect(within(row).queryByTestId('grant-countdown')).toBeNull();
    expect(within(row).queryByTestId('grant-release')).toBeNull();
  });

  it('sends a chosen start time and says when an approved grant starts', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/access', { grants: () => [] });
    await settle();
    await fillRequest({ target: 'web-1', justification: JUSTIFICATION });
    await fireEvent.click(screen.getByTestId('request-start-later'));
    const at = screen.getByTestId<HTMLInputElement>('request-start-at');
    expect(at.value).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/); // an hour ahead, prefilled
    const start = new Date(core.elevation.now() + 2 * 60 * MIN);
    start.setSeconds(0, 0);
    const pad = (n: number) => String(n).padStart(2, '0');
    const local = `${start.getFullYear()}-${pad(start.getMonth() + 1)}-${pad(start.getDate())}T${pad(start.getHours())}:${pad(start.getMinutes())}`;
    await fireEvent.input(at, { target: { value: local } });
    await fireEvent.click(screen.getByTestId('request-submit'));
    await settle();
    expect(preparedActions(core)).toMatchObject([{ action: { start_at_ms: start.getTime() } }]);
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await settle();
    expect(screen.getByTestId('request-result').dataset['state']).toBe('approved');
    expect(screen.getByTestId('request-result').textContent).toContain('starts at');
    expect(grantRows()[0]?.dataset['state']).toBe('approved');
  });

  it('says what is missing before anything is signed', async () => {
    const { core } = await openAccess();
    await type('request-target', '');
    await fireEvent.click(screen.getByTestId('request-submit'));
    expect(screen.getByTestId('request-target-error').textContent).toContain('Name the target');
    expect(screen.getByTestId('request-justification-error').textContent).toContain('A justification is required');
    expect(screen.getByTestId('request-target').getAttribute('aria-invalid')).toBe('true');

    await fillRequest({ target: 'web-1', minutes: '61', justification: 'too short' });
    expect(screen.getByTestId('request-justification-error').textContent).toContain('At least 10 characters (9 so far)');
    expect(screen.getByTestId('request-justification-count').textContent).toBe('9 / 2000');
    expect(screen.getByTestId('request-duration-error').textContent).toContain('At most 60 minutes');
    expect(screen.queryByTestId('request-target-error')).toBeNull();

    await type('request-justification', 'x'.repeat(2001));
    expect(screen.getByTestId('request-justification-error').textContent).toContain('At most 2000 characters');
    await type('request-justification', 'first line\nsecond line');
    expect(screen.getByTestId('request-justification-error').textContent).toContain('one line');

    await fillRequest({ entitlement: 'db-prod-dba', target: 'db-prod-1', justification: 'INC-1 vacuum the table' });
    await fireEvent.click(screen.getByTestId('request-submit'));
    expect(screen.getByTestId('request-ticket-error').textContent).toContain('needs a ticket matching INC-*');
    expect(screen.queryByTestId('request-duration-error')).toBeNull();
    expect(preparedActions(core)).toEqual([]);
    expect(screen.queryByTestId('stepup-modal')).toBeNull();
  });

  it('shows a policy refusal (forbidden) with its own words', async () => {
    await openAccess();
    await fillRequest({ target: 'db-prod-1', justification: JUSTIFICATION });
    await fireEvent.click(screen.getByTestId('request-submit'));
    const error = await screen.findByTestId('request-error');
    expect(error.dataset['code']).toBe('forbidden');
    expect(error.textContent).toContain('The access policy does not allow this.');
    expect(error.textContent).toContain('the target is not covered by this entitlement');
    expect(screen.queryByTestId('stepup-modal')).toBeNull();
  });

  it('shows the rule a bad_request names', async () => {
    await openAccess();
    await fillRequest({
      entitlement: 'db-prod-dba',
      target: 'db-prod-1',
      justification: 'Vacuum the orders table',
      ticket: 'OPS-1',
    });
    await fireEvent.click(screen.getByTestId('request-submit'));
    const error = await screen.findByTestId('request-error');
    expect(error.dataset['code']).toBe('bad_request');
    expect(error.textContent).toContain('a rule is not met');
    expect(error.textContent).toContain('the ticket does not match the required form INC-*');
  });

  it('cancelling the step-up requests nothing and cancels it in the core', async () => {
    const { core } = await openAccess({ grants: () => [] });
    await fillRequest({ target: 'web-1', justification: JUSTIFICATION });
    await fireEvent.click(screen.getByTestId('request-submit'));
    await screen.findByTestId('stepup-modal');
    const id = [...core.elevation.pending.keys()][0];
    await fireEvent.click(screen.getByTestId('stepup-cancel'));
    await waitFor(() =>
      expect(core.calls.filter((c) => c.cmd === 'cancel_step_up')).toEqual([{ cmd: 'cancel_step_up', args: { id } }]),
    );
    expect(core.elevation.pending.size).toBe(0);
    expect(core.calls.some((c) => c.cmd === 'confirm_elevation')).toBe(false);
    expect(screen.queryByTestId('request-result')).toBeNull();
    expect(screen.getByTestId('grants-empty')).toBeTruthy();
  });

  it('asks for the security key PIN while the elevation is confirmed', async () => {
    const { core } = await openAccess({ grants: () => [], pin: '1234' });
    await fillRequest({ target: 'web-1', justification: JUSTIFICATION });
    await fireEvent.click(screen.getByTestId('request-submit'));
    await fireEvent.click(await screen.findByTestId('stepup-approve'));
    await screen.findByTestId('pin-dialog');
    expect(screen.getByTestId('touch-key')).toBeTruthy();
    await fireEvent.input(screen.getByTestId('pin-input'), { target: { value: '1234' } });
    await fireEvent.click(screen.getByTestId('pin-submit'));
    expect((await screen.findByTestId('request-result')).dataset['state']).toBe('active');
    expect(core.calls.filter((c) => c.cmd === 'submit_pin')).toHaveLength(1);
  });

  it('shows a conflict at confirmation inside the dialog, in elevation words, and stops approval', async () => {
    const { core } = await openAccess();
    await fillRequest({ target: 'web-1', justification: JUSTIFICATION });
    await fireEvent.click(screen.getByTestId('request-submit'));
    await screen.findByTestId('stepup-modal');
    core.confirmFailure = { code: 'conflict', message: 'the entitlement changed' };
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    const error = await screen.findByTestId('stepup-error');
    expect(error.dataset['code']).toBe('conflict');
    expect(error.textContent).toContain('This request or grant has changed');
    expect(error.textContent).not.toContain('keys');
    expect(screen.getByTestId<HTMLButtonElement>('stepup-approve').disabled).toBe(true);
  });
});

describe('access page: my access', () => {
  it('lists grants with their state, and why ended ones ended', async () => {
    await openAccess({
      grants: withDefaults(
        (now) => activeGrant(now, 20 * MIN),
        (now) => ({
          ...activeGrant(now, 0, { id: 'gr-ada-0', target: 'web-3' }),
          state: 'revoked',
          ended_at_ms: now - MIN,
          end_reason: 'revoked by bob: incident over',
        }),
      ),
    });
    expect(grantRows().map((r) => [r.dataset['grantId'], r.dataset['state']])).toEqual([
      ['gr-ada-1', 'active'],
      ['gr-ada-0', 'revoked'],
    ]);
    expect(within(grantRow('gr-ada-0')).getByTestId('grant-why').textContent).toContain('revoked by bob: incident over');
    expect(within(grantRow('gr-ada-0')).getByTestId('grant-state').textContent).toBe('Revoked');
    expect(within(grantRow('gr-ada-0')).queryByTestId('grant-release')).toBeNull();
    expect(within(grantRow('gr-ada-1')).getByTestId('grant-state').textContent).toBe('Active');
  });

  it('releases an active grant', async () => {
    const { core } = await openAccess({ grants: (now) => [activeGrant(now, 20 * MIN)] });
    await fireEvent.click(within(grantRow('gr-ada-1')).getByTestId('grant-release'));
    await waitFor(() => expect(grantRow('gr-ada-1').dataset['state']).toBe('released'));
    expect(core.calls.filter((c) => c.cmd === 'release_grant')).toEqual([{ cmd: 'release_grant', args: { id: 'gr-ada-1' } }]);
    expect(within(grantRow('gr-ada-1')).getByTestId('grant-why').textContent).toContain('released by the requester');
    expect(screen.getByTestId('access-notice').textContent).toContain('Released deploy on web-1');
    expect(within(grantRow('gr-ada-1')).queryByTestId('grant-countdown')).toBeNull();
  });

  it('cancels a pending request', async () => {
    const { core } = await openAccess({
      grants: (now) => [
        { ...activeGrant(now, 0), state: 'pending', starts_at_ms: null, ends_at_ms: null, approvals_missing: 1 },
      ],
    });
    expect(within(grantRow('gr-ada-1')).getByTestId('grant-waiting').textContent).toContain('1 more approval');
    await fireEvent.click(within(grantRow('gr-ada-1')).getByTestId('grant-cancel'));
    await waitFor(() => expect(grantRow('gr-ada-1').dataset['state']).toBe('cancelled'));
    expect(core.calls.filter((c) => c.cmd === 'cancel_request')).toEqual([{ cmd: 'cancel_request', args: { id: 'gr-ada-1' } }]);
    expect(screen.getByTestId('access-notice').textContent).toContain('Cancelled the request');
  });

  it('shows a refused release by code and the grant as the broker has it', async () => {
    const { core } = await openAccess({ grants: (now) => [activeGrant(now, 20 * MIN)] });
    core.elevation.failNext('release_grant', { code: 'conflict', message: 'a revoked grant cannot be released' });
    await fireEvent.click(within(grantRow('gr-ada-1')).getByTestId('grant-release'));
    const error = await screen.findByTestId('grant-action-error');
    expect(error.dataset['code']).toBe('conflict');
    expect(error.textContent).toContain('a revoked grant cannot be released');
  });

  it('shows a load failure with a retry', async () => {
    const { core } = renderSignedIn('#/access');
    core.elevation.failNext('list_grants', { code: 'broker_unreachable', message: 'connection refused' });
    const error = await screen.findByTestId('grants-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
    await fireEvent.click(within(error).getByText('Retry'));
    await screen.findAllByTestId(/^grants-(empty|current|past)$/);
    expect(screen.queryByTestId('grants-error')).toBeNull();
  });

  it.each([
    ['ok', 5 * MIN + 3_000, false, false],
    ['warning', 4 * MIN, true, false],
    ['danger', 50_000, false, true],
  ])('styles the countdown %s', async (level, endsIn, warning, danger) => {
    useFakeClock();
    renderSignedIn('#/access', { grants: (now) => [activeGrant(now, endsIn)] });
    await settle();
    const countdown = within(grantRow('gr-ada-1')).getByTestId('grant-countdown');
    expect(countdown.dataset['level']).toBe(level);
    expect(countdown.classList.contains('countdown--warning')).toBe(warning);
    expect(countdown.classList.contains('countdown--danger')).toBe(danger);
  });

  it('counts down by the broker clock and turns warning at 5 min, danger at 1 min', async () => {
    useFakeClock();
    // The broker's clock is two hours behind the workstation's: only its own time may count.
    renderSignedIn('#/access', { clockOffsetMs: -2 * 60 * MIN, grants: (now) => [activeGrant(now, 5 * MIN + 1_000)] });
    await settle();
    const countdown = () => within(grantRow('gr-ada-1')).getByTestId('grant-countdown');
    expect(countdown().textContent?.trim()).toBe('5:01');
    expect(countdown().classList.contains('countdown--warning')).toBe(false);
    await settle(2_000);
    expect(countdown().textContent?.trim()).toBe('4:59');
    expect(countdown().classList.contains('countdown--warning')).toBe(true);
    expect(countdown().classList.contains('countdown--danger')).toBe(false);
    await settle(4 * MIN);
    expect(countdown().textContent?.trim()).toBe('0:59');
    expect(countdown().classList.contains('countdown--danger')).toBe(true);
    expect(countdown().classList.contains('countdown--warning')).toBe(false);
  });

  it('asks the broker again when a countdown ends, and shows the grant expired', async () => {
    useFakeClock();
    const { core } = renderSignedIn('#/access', { grants: (now) => [activeGrant(now, 3_000)] });
    core.elevation.emit = () => undefined; // no live event says so: the countdown itself must
    await settle();
    expect(grantRow('gr-ada-1').dataset['state']).toBe('active');
    await settle(5_000);
    expect(grantRow('gr-ada-1').dataset['state']).toBe('expired');
    expect(within(grantRow('gr-ada-1')).getByTestId('grant-why').textContent).toContain('expired');
  });
});
