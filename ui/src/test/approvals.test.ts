import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../lib/ipc';
import { inboxItem, renderSignedIn, type } from './elevation-helpers';
import { renderApp } from './helpers';

const BOB = 'gr-bob-3';
const CAROL = 'gr-carol-1';

async function openApprovals(options: Parameters<typeof renderSignedIn>[1] = {}) {
  const result = renderSignedIn('#/approvals', options);
  await screen.findByTestId('approvals-page');
  await waitFor(() => expect(screen.queryByTestId('approvals-loading')).toBeNull());
  return result;
}

function decisions(core: ReturnType<typeof renderSignedIn>['core']): unknown[] {
  return core.calls.filter((c) => c.cmd === 'prepare_elevation').map((c) => c.args);
}

describe('approvals page: inbox', () => {
  it('keeps the placeholder while signed out', async () => {
    renderApp({}, '#/approvals');
    expect((await screen.findByTestId('page-approvals')).textContent).toContain('Coming in a later release');
    expect(screen.queryByTestId('approvals-page')).toBeNull();
  });

  it('shows everything an approver needs to judge a request', async () => {
    await openApprovals();
    const item = inboxItem(BOB);
    const text = item.textContent ?? '';
    expect(within(item).getByTestId('inbox-requester').textContent).toBe('bob');
    expect(text).toContain('db-prod-dba');
    expect(text).toContain('db-prod-2');
    expect(text).toContain('postgres');
    expect(text).toContain('dba');
    expect(text).toContain('1 h');
    expect(text).toContain('INC-4711');
    expect(text).toContain('As soon as approved');
    expect(within(item).getByTestId('inbox-justification').textContent).toContain(
      'INC-4711: vacuum the orders table after the bulk import',
    );
    expect(within(item).getByTestId('inbox-rule').textContent).toBe(
      'needs 2 distinct approvers from dba-leads; the requester cannot approve',
    );
    const approvals = within(item).getByTestId('inbox-approvals').textContent ?? '';
    expect(approvals).toContain('Approved by carol');
    expect(approvals).toContain('1 more approval needed');
    const recent = within(item).getByTestId('inbox-recent').textContent ?? '';
    expect(recent).toContain('dba on db-prod-2');
    expect(recent).toContain('Expired');
    expect(recent).toContain('deploy on web-3');
    expect(recent).not.toContain('gr-bob-3');
  });

  it('approves with a comment through the step-up, then the request leaves the inbox', async () => {
    const { core } = await openApprovals();
    await fireEvent.input(within(inboxItem(BOB)).getByTestId('inbox-comment'), { target: { value: 'Ticket checked ' } });
    await fireEvent.click(within(inboxItem(BOB)).getByTestId('inbox-approve'));
    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('Approval');
    expect(screen.getByTestId('stepup-description').textContent).toBe(`Approve request ${BOB}`);
    expect(decisions(core)).toEqual([
      { action: { op: 'decide', request_id: BOB, approve: true, comment: 'Ticket checked' } },
    ]);
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await screen.findByTestId('inbox-empty');
    expect(screen.getByTestId('inbox-empty').textContent).toContain('Nothing waiting for you');
    expect(screen.getByTestId('approvals-notice').textContent).toContain('Approved bob’s request for dba on db-prod-2');
    expect(core.elevation.grant(BOB).state).toBe('active');
    expect(core.elevation.grant(BOB).decisions.map((d) => [d.approver, d.approve, d.comment])).toEqual([
      ['carol', true, 'Checked the ticket.'],
      ['ada', true, 'Ticket checked'],
    ]);
  });

  it('asks for a comment before a denial, then denies through the step-up', async () => {
    const { core } = await openApprovals();
    await fireEvent.click(within(inboxItem(BOB)).getByTestId('inbox-deny'));
    const error = within(inboxItem(BOB)).getByTestId('inbox-comment-error');
    expect(error.textContent).toContain('Say why you deny it');
    const comment = within(inboxItem(BOB)).getByTestId('inbox-comment');
    expect(comment.getAttribute('aria-invalid')).toBe('true');
    await waitFor(() => expect(document.activeElement).toBe(comment));
    expect(decisions(core)).toEqual([]);
    expect(screen.queryByTestId('stepup-modal')).toBeNull();

    await fireEvent.input(comment, { target: { value: 'Wait for the maintenance window' } });
    expect(within(inboxItem(BOB)).queryByTestId('inbox-comment-error')).toBeNull();
    await fireEvent.click(within(inboxItem(BOB)).getByTestId('inbox-deny'));
    await screen.findByTestId('stepup-modal');
    expect(screen.getByTestId('stepup-description').textContent).toBe(`Deny request ${BOB}`);
    expect(decisions(core)).toEqual([
      { action: { op: 'decide', request_id: BOB, approve: false, comment: 'Wait for the maintenance window' } },
    ]);
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await screen.findByTestId('inbox-empty');
    expect(core.elevation.grant(BOB).state).toBe('denied');
    expect(core.elevation.grant(BOB).end_reason).toBe('denied by ada: Wait for the maintenance window');
    expect(screen.getByTestId('approvals-notice').textContent).toContain('Denied bob’s request');
  });

  it('keeps the request when the step-up is cancelled', async () => {
    const { core } = await openApprovals();
    await fireEvent.click(within(inboxItem(BOB)).getByTestId('inbox-approve'));
    await screen.findByTestId('stepup-modal');
    await fireEvent.click(screen.getByTestId('stepup-cancel'));
    await waitFor(() => expect(core.calls.some((c) => c.cmd === 'cancel_step_up')).toBe(true));
    expect(inboxItem(BOB)).toBeTruthy();
    expect(core.elevation.grant(BOB).state).toBe('pending');
    expect(core.calls.some((c) => c.cmd === 'confirm_elevation')).toBe(false);
  });

  it('shows a refusal in the request’s card', async () => {
    const { core } = await openApprovals();
    core.prepareFailure = {
      code: 'forbidden',
      message: 'the approver is in none of the approver groups of this entitlement',
    };
    await fireEvent.click(within(inboxItem(BOB)).getByTestId('inbox-approve'));
    const error = await within(inboxItem(BOB)).findByTestId('inbox-error');
    expect(error.dataset['code']).toBe('forbidden');
    expect(error.textContent).toContain('The access policy does not allow this.');
    expect(error.textContent).toContain('the approver is in none of the approver groups');
  });

  it('stops the approval when someone else decided first (conflict at confirmation)', async () => {
    const { core } = await openApprovals();
    await fireEvent.click(within(inboxItem(BOB)).getByTestId('inbox-approve'));
    await screen.findByTestId('stepup-modal');
    core.elevation.decideAs('dave', BOB, false, 'not now');
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    const error = await screen.findByTestId('stepup-error');
    expect(error.dataset['code']).toBe('conflict');
    expect(screen.getByTestId<HTMLButtonElement>('stepup-approve').disabled).toBe(true);
    await fireEvent.click(screen.getByTestId('stepup-cancel'));
    await screen.findByTestId('inbox-empty');
  });

  it('shows a load failure with a retry', async () => {
    const { core } = renderSignedIn('#/approvals');
    core.elevation.failNext('approvals_inbox', { code: 'broker_unreachable', message: 'connection refused' });
    const error = await screen.findByTestId('approvals-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
    await fireEvent.click(within(error).getByText('Retry'));
    await screen.findByTestId('inbox-item');
  });
});

describe('approvals page: break-glass reviews', () => {
  it('shows the use and closes the review with a required comment, without a step-up', async () => {
    const { core } = await openApprovals();
    const item = screen.getByTestId('review-item');
    expect(item.dataset['grantId']).toBe(CAROL);
    expect(item.textContent).toContain('carol');
    expect(item.textContent).toContain('dba on db-prod-1');
    expect(item.textContent).toContain('Primary out of disk');
    expect(within(item).getByTestId('review-reviewers').textContent).toContain('Reviewed by dave; 1 more needed');

    await fireEvent.click(within(item).getByTestId('review-close'));
    expect(within(item).getByTestId('review-comment-error').textContent).toContain('A comment is required');
    expect(core.calls.some((c) => c.cmd === 'close_review')).toBe(false);

    await type('review-comment', 'Justified: disk full, on-call unreachable');
    await fireEvent.click(within(item).getByTestId('review-close'));
    await screen.findByTestId('reviews-empty');
    expect(core.calls.filter((c) => c.cmd === 'close_review')).toEqual([
      { cmd: 'close_review', args: { input: { id: CAROL, comment: 'Justified: disk full, on-call unreachable' } } },
    ]);
    expect(core.calls.some((c) => c.cmd === 'prepare_elevation')).toBe(false);
    expect(screen.queryByTestId('stepup-modal')).toBeNull();
    expect(core.elevation.grant(CAROL).review_closed).toBe(true);
    expect(screen.getByTestId('approvals-notice').textContent).toContain('fully reviewed');
  });

  it('bounds comments by the limit the core and the broker enforce, not a number of its own', async () => {
    const { core } = await openApprovals();
    // Both fields once allowed 2000 characters, which the core then refused after typing.
    expect(LIMITS.comment_max_chars).toBe(1000);
    expect(within(inboxItem(BOB)).getByTestId('inbox-comment').getAttribute('maxlength')).toBe('1000');
    expect(screen.getByTestId('review-comment').getAttribute('maxlength')).toBe('1000');
    // A value set by script ignores maxlength; the fake core refuses it like the broker.
    await type('review-comment', 'x'.repeat(LIMITS.comment_max_chars + 1));
    await fireEvent.click(screen.getByTestId('review-close'));
    const error = await screen.findByTestId('review-error');
    expect(error.dataset['code']).toBe('bad_request');
    expect(error.textContent).toContain('at most 1000 characters');
    expect(core.elevation.grant(CAROL).review_closed).toBe(false);
  });

  it('shows a refused review in its card', async () => {
    const { core } = await openApprovals();
    core.elevation.failNext('close_review', { code: 'conflict', message: 'this review is already closed' });
    await type('review-comment', 'Looks fine to me');
    await fireEvent.click(screen.getByTestId('review-close'));
    const error = await screen.findByTestId('review-error');
    expect(error.dataset['code']).toBe('conflict');
    expect(error.textContent).toContain('this review is already closed');
  });

  it('says when nothing waits', async () => {
    await openApprovals({ grants: () => [] });
    expect(screen.getByTestId('inbox-empty').textContent).toContain('Nothing waiting for you');
    expect(screen.getByTestId('reviews-empty').textContent).toContain('No break-glass use waits for your review');
    expect(screen.queryByTestId('inbox-item')).toBeNull();
  });
});
