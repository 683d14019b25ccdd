import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { ApiError, ErrorCode } from '../lib/ipc';
import { CONFIGURED, renderApp, settle, useFakeClock } from './helpers';

const BUILD = { version: '0.1.0', debug: false, virtual_key: false };

async function typeInto(testid: string, value: string): Promise<void> {
  await fireEvent.input(screen.getByTestId(testid), { target: { value } });
}

describe('sign-in', () => {
  it('replaces the area pages (not Settings) while connected and signed out', async () => {
    renderApp({ settings: CONFIGURED });
    expect(await screen.findByTestId('signin-panel')).toBeTruthy();
    expect(screen.queryByTestId('page-access')).toBeNull();
    await fireEvent.click(screen.getByTestId('nav-audit'));
    expect(screen.getByTestId('signin-panel')).toBeTruthy();
    await fireEvent.click(screen.getByTestId('nav-settings'));
    expect(screen.getByTestId('page-settings')).toBeTruthy();
    expect(screen.queryByTestId('signin-panel')).toBeNull();
  });

  it('is not shown while no broker is connected', async () => {
    renderApp({ settings: CONFIGURED, brokerState: 'unreachable' });
    await waitFor(() => expect(screen.getByTestId('broker-state').dataset['state']).toBe('unreachable'));
    expect(screen.queryByTestId('signin-panel')).toBeNull();
    expect(screen.getByTestId('page-access')).toBeTruthy();
  });

  it('signs in with a security key, showing "touch your key" while pending', async () => {
    const { core } = renderApp({ settings: CONFIGURED, delayMs: 30 });
    await screen.findByTestId('signin-panel');
    const submit = screen.getByTestId<HTMLButtonElement>('signin-submit');
    expect(submit.disabled).toBe(true); // no user name yet
    await typeInto('signin-user', '  ada ');
    expect(submit.disabled).toBe(false);
    await fireEvent.click(submit);
    const touch = await screen.findByTestId('touch-key');
    await waitFor(() => expect(touch.dataset['state']).toBe('touch')); // the mock key waits for a touch
    expect(touch.textContent).toContain('Touch your security key');
    expect(submit.disabled).toBe(true);
    await screen.findByTestId('page-access');
    expect(screen.queryByTestId('signin-panel')).toBeNull();
    expect(screen.getByTestId('status-user').textContent).toContain('ada');
    expect(core.calls.filter((c) => c.cmd === 'login')).toEqual([{ cmd: 'login', args: { input: { user: 'ada' } } }]);
  });

  it.each<[ErrorCode, string]>([
    ['account_locked', 'This account is locked'],
    ['rate_limited', 'Too many attempts'],
    ['webauthn_rejected', 'Your security key did not confirm'],
    ['reauthentication_required', 'Sign in again'],
    ['unauthenticated', 'not signed in'],
    ['broker_unreachable', 'cannot be reached'],
    ['broker_untrusted', 'not signed by the pinned CA'],
  ])('shows a %s failure by its code', async (code, text) => {
    const { core } = renderApp({ settings: CONFIGURED });
    await screen.findByTestId('signin-panel');
    core.loginFailure = { code, message: `core says ${code}` } satisfies ApiError;
    await typeInto('signin-user', 'ada');
    await fireEvent.click(screen.getByTestId('signin-submit'));
    const error = await screen.findByTestId('auth-error');
    expect(error.dataset['code']).toBe(code);
    expect(error.textContent).toContain(text);
    expect(error.textContent).toContain(`core says ${code}`);
    expect(screen.getByTestId('signin-panel')).toBeTruthy();
    expect(screen.queryByTestId('touch-key')).toBeNull();
    expect(screen.getByTestId('status-user').textContent?.trim()).toBe('Not signed in');
  });

  it('reports an unknown user as rejected by the key, and allows a retry', async () => {
    renderApp({ settings: CONFIGURED });
    await screen.findByTestId('signin-panel');
    await typeInto('signin-user', 'mallory');
    await fireEvent.click(screen.getByTestId('signin-submit'));
    expect((await screen.findByTestId('auth-error')).dataset['code']).toBe('webauthn_rejected');
    await typeInto('signin-user', 'ada');
    await fireEvent.click(screen.getByTestId('signin-submit'));
    await screen.findByTestId('page-access');
  });
});

describe('enrolment', () => {
  it('registers a key with an invite code and signs in', async () => {
    const { core } = renderApp({ settings: CONFIGURED, invites: { 'INV-42': 'grace' } });
    await screen.findByTestId('signin-panel');
    await fireEvent.click(screen.getByTestId('enroll-open'));
    expect(screen.queryByTestId('signin-user')).toBeNull();
    expect(screen.getByTestId<HTMLInputElement>('enroll-key-name').value).toBe('Security key');
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('enroll-code')));
    await typeInto('enroll-code', 'INV-42');
    await typeInto('enroll-key-name', 'Blue YubiKey');
    await fireEvent.click(screen.getByTestId('enroll-submit'));
    await screen.findByTestId('page-access');
    expect(screen.getByTestId('status-user').textContent).toContain('grace');
    expect(core.calls.filter((c) => c.cmd === 'enroll')).toEqual([
      { cmd: 'enroll', args: { input: { code: 'INV-42', key_name: 'Blue YubiKey' } } },
    ]);
    expect(core.keys.map((k) => k.name)).toEqual(['Blue YubiKey']);
  });

  it('says an invalid invite code is not valid or has expired', async () => {
    renderApp({ settings: CONFIGURED });
    await screen.findByTestId('signin-panel');
    await fireEvent.click(screen.getByTestId('enroll-open'));
    await typeInto('enroll-code', 'WRONG');
    await fireEvent.click(screen.getByTestId('enroll-submit'));
    const error = await screen.findByTestId('auth-error');
    expect(error.dataset['code']).toBe('invite_invalid');
    expect(error.textContent).toContain('This invite code is not valid or has expired');
    expect(screen.getByTestId('signin-panel')).toBeTruthy();
  });

  it('shows "touch your key" while registering', async () => {
    renderApp({ settings: CONFIGURED, delayMs: 30 });
    await screen.findByTestId('signin-panel');
    await fireEvent.click(screen.getByTestId('enroll-open'));
    await typeInto('enroll-code', 'PAW-INVITE-1');
    await fireEvent.click(screen.getByTestId('enroll-submit'));
    expect(await screen.findByTestId('touch-key')).toBeTruthy();
    await screen.findByTestId('page-access');
  });

  it('can go back to sign-in', async () => {
    renderApp({ settings: CONFIGURED });
    await screen.findByTestId('signin-panel');
    await fireEvent.click(screen.getByTestId('enroll-open'));
    await fireEvent.click(screen.getByTestId('signin-open'));
    expect(screen.getByTestId('signin-user')).toBeTruthy();
  });
});

describe('virtual security key label (G5)', () => {
  it('is shown in the status bar and on the sign-in panel iff build.virtual_key', async () => {
    useFakeClock();
    const { core } = renderApp({ settings: CONFIGURED, build: { ...BUILD, virtual_key: true } });
    await settle();
    const panel = screen.getByTestId('signin-panel');
    expect(screen.getAllByTestId('virtual-key-banner')).toHaveLength(2);
    const bar = within(document.querySelector<HTMLElement>('footer.statusbar') ?? document.body);
    expect(bar.getByTestId('virtual-key-banner').textContent).toContain(
      'Virtual security key — INSECURE, for demos and tests',
    );
    expect(within(panel).getByTestId('virtual-key-banner').textContent).toContain('INSECURE');

    core.build = BUILD;
    await settle(5_000); // next poll
    expect(screen.getByTestId('signin-panel')).toBeTruthy();
    expect(screen.queryAllByTestId('virtual-key-banner')).toHaveLength(0);
  });

  it('stays in the status bar after sign-in', async () => {
    renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: [] }, build: { ...BUILD, virtual_key: true } });
    await screen.findByTestId('account');
    expect(screen.getAllByTestId('virtual-key-banner')).toHaveLength(1);
  });

  it('is absent on a hardware-key build', async () => {
    renderApp({ settings: CONFIGURED, build: BUILD });
    await screen.findByTestId('signin-panel');
    expect(screen.queryAllByTestId('virtual-key-banner')).toHaveLength(0);
  });
});

describe('sign out', () => {
  it('calls logout, refreshes the status and shows the sign-in panel', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: ['engineer'] } });
    const account = await screen.findByTestId('account');
    expect(account.textContent).toContain('ada');
    await fireEvent.click(screen.getByTestId('signout'));
    await screen.findByTestId('signin-panel');
    expect(core.calls.some((c) => c.cmd === 'logout')).toBe(true);
    expect(screen.queryByTestId('signout')).toBeNull();
    expect(screen.getByTestId('status-user').textContent?.trim()).toBe('Not signed in');
  });

  it('says the broker revoked the sign-in, with the token counts, until dismissed', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: ['engineer'] } });
    await screen.findByTestId('account');
    await fireEvent.click(screen.getByTestId('signout'));
    const panel = await screen.findByTestId('signin-panel');
    const notice = within(panel).getByTestId('signout-notice');
    expect(notice.dataset['tone']).toBe('success');
    expect(notice.getAttribute('role')).toBe('status');
    expect(within(notice).getByTestId('signout-notice-text').textContent).toBe(
      'Signed out. The broker revoked this sign-in: 2 access tokens and 1 refresh token no longer work on any broker.',
    );
    await fireEvent.click(within(notice).getByTestId('signout-notice-dismiss'));
    expect(screen.queryByTestId('signout-notice')).toBeNull();

    expect(core.calls.filter((c) => c.cmd === 'logout')).toHaveLength(1);
  });

  it('counts the tokens the broker says it revoked', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: ['engineer'] } });
    await screen.findByTestId('account');
    core.signOutRevokes = { access_tokens: 1, refresh_tokens: 3 };
    await fireEvent.click(screen.getByTestId('signout'));
    expect((await screen.findByTestId('signout-notice-text')).textContent).toBe(
      'Signed out. The broker revoked this sign-in: 1 access token and 3 refresh tokens no longer work on any broker.',
    );
  });

  it('warns that the broker could not be reached, and signs out here all the same', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: ['engineer'] } });
    await screen.findByTestId('account');
    core.signOutBrokerError = { code: 'broker_unreachable', message: 'connection refused' };
    await fireEvent.click(screen.getByTestId('signout'));
    const panel = await screen.findByTestId('signin-panel');
    const notice = within(panel).getByTestId('signout-notice');
    expect(notice.dataset['tone']).toBe('warning');
    expect(notice.dataset['code']).toBe('broker_unreachable');
    expect(notice.getAttribute('role')).toBe('alert');
    expect(within(notice).getByTestId('signout-notice-text').textContent).toBe(
      'Signed out on this computer. The broker could not be reached (broker_unreachable): ' +
        'the sign-in ends at the broker when it next expires (at most 15 minutes idle).',
    );
    expect(notice.textContent).toContain('connection refused');
    expect(screen.getByTestId('status-user').textContent?.trim()).toBe('Not signed in');
    expect(screen.queryByTestId('signout-error')).toBeNull();
    await fireEvent.click(within(notice).getByTestId('signout-notice-dismiss'));
    expect(screen.queryByTestId('signout-notice')).toBeNull();
  });

  it('says the broker did not confirm when it refused the sign-out', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: ['engineer'] } });
    await screen.findByTestId('account');
    core.signOutBrokerError = { code: 'unauthenticated', message: 'the session has ended' };
    await fireEvent.click(screen.getByTestId('signout'));
    const notice = await screen.findByTestId('signout-notice');
    expect(notice.dataset['code']).toBe('unauthenticated');
    expect(within(notice).getByTestId('signout-notice-text').textContent).toBe(
      'Signed out on this computer. The broker did not confirm the sign-out (unauthenticated): ' +
        'the sign-in ends at the broker when it next expires (at most 15 minutes idle).',
    );
  });

  it('shows the notice above the page when the sign-in screen is not shown (no broker)', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: ['engineer'] } });
    await screen.findByTestId('account');
    core.brokerState = 'unreachable';
    await fireEvent.click(screen.getByTestId('signout'));
    const notice = await screen.findByTestId('signout-notice');
    expect(screen.queryByTestId('signin-panel')).toBeNull();
    expect(notice.dataset['code']).toBe('broker_unreachable');
    expect(notice.textContent).toContain('The broker could not be reached (broker_unreachable)');
  });

  it('forgets the notice when someone signs in', async () => {
    renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: ['engineer'] } });
    await screen.findByTestId('account');
    await fireEvent.click(screen.getByTestId('signout'));
    await screen.findByTestId('signout-notice');
    await typeInto('signin-user', 'ada');
    await fireEvent.click(screen.getByTestId('signin-submit'));
    await screen.findByTestId('page-access');
    await fireEvent.click(screen.getByTestId('signout'));
    await screen.findByTestId('signin-panel');
    expect(screen.getAllByTestId('signout-notice')).toHaveLength(1);
    await fireEvent.click(screen.getByTestId('signout-notice-dismiss'));
    await typeInto('signin-user', 'ada');
    await fireEvent.click(screen.getByTestId('signin-submit'));
    await screen.findByTestId('page-access');
    expect(screen.queryByTestId('signout-notice')).toBeNull();
  });

  it('has no sign-out control while signed out', async () => {
    renderApp({ settings: CONFIGURED });
    await screen.findByTestId('signin-panel');
    expect(screen.queryByTestId('signout')).toBeNull();
  });
});
