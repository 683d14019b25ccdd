import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { VaultAccountView } from '../lib/ipc';
import { mockVaultAccount, type MockCore, type MockOptions } from '../lib/ipc/mock';
import { CLIPBOARD_CLEAR_MS } from '../lib/util/clipboard';
import { needsAttention, reasonProblem, revealGrants, rotationHealth, sortAccounts } from '../lib/util/vault';
import { activeGrant, MIN, type, withDefaults } from './elevation-helpers';
import { CONFIGURED, renderApp, settle, useFakeClock } from './helpers';

const ADMIN = { name: 'ada', roles: ['admin'] };
const ADA = { name: 'ada', roles: ['engineer'] };
const REASON = 'INC-77: the BMC console has no SSO';

/** ada holds root on web-1 for 30 more minutes. */
const WEB_ROOT_GRANT = withDefaults((now) => activeGrant(now, 30 * MIN, { role: 'root' }));

async function openVault(user = ADMIN, extra: MockOptions = {}): Promise<MockCore> {
  const { core } = renderApp({ settings: CONFIGURED, user, ...extra }, '#/vault');
  await screen.findByTestId('vault-page');
  return core;
}

function rows(): HTMLElement[] {
  return screen.queryAllByTestId(/^vault-account-row-/);
}

function rowNames(): string[] {
  return rows().map((r) => r.dataset['account'] ?? '');
}

function row(name: string): HTMLElement {
  return screen.getByTestId(`vault-account-row-${name}`);
}

function calls(core: MockCore, cmd: string): unknown[] {
  return core.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
}

async function approveStepUp(): Promise<HTMLElement> {
  const modal = await screen.findByTestId('stepup-modal');
  await fireEvent.click(within(modal).getByTestId('stepup-approve'));
  await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
  return modal;
}

/** Reveals web-1/root as ada (real timers); returns the secret the dialog shows. */
async function revealWebRoot(): Promise<string> {
  await waitFor(() => expect(within(row('web-1/root')).getByTestId('vault-reveal-button')).toBeTruthy());
  await fireEvent.click(within(row('web-1/root')).getByTestId('vault-reveal-button'));
  await type('vault-reveal-reason', REASON);
  await fireEvent.click(screen.getByTestId('vault-reveal-submit'));
  await approveStepUp();
  const secret = await screen.findByTestId('vault-reveal-secret');
  return secret.textContent ?? '';
}

function storageText(): string {
  const all: string[] = [];
  for (const s of [localStorage, sessionStorage]) {
    for (let i = 0; i < s.length; i++) {
      const key = s.key(i) ?? '';
      all.push(key, s.getItem(key) ?? '');
    }
  }
  return all.join('\n');
}

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('the vault page', () => {
  it('lists every account for an administrator, failing and unsettled rotations first', async () => {
    await openVault();
    expect(screen.getByTestId('vault-loading')).toBeTruthy();
    await waitFor(() => expect(rowNames()).toEqual(['bmc-3/ADMIN', 'web-2/deploy', 'db-prod-1/app_owner', 'web-1/root']));
    expect(screen.getByTestId('vault-heading').textContent).toContain('All vaulted accounts');
    expect(screen.getByTestId('vault-counts').textContent).toContain('4 accounts · 1 failing rotation');

    const db = row('db-prod-1/app_owner');
    expect(db.textContent).toContain('PostgreSQL password');
    expect(within(db).getByTestId('vault-version').textContent).toBe('v12');
    expect(within(db).getByTestId('vault-holder').textContent).toContain('bob');
    expect(within(db).getByTestId('vault-holder-countdown').textContent).toMatch(/^(25:00|24:5\d)$/);
    expect(within(db).getByTestId('vault-next').textContent).toContain('When the checkout ends');

    const bmc = row('bmc-3/ADMIN');
    expect(bmc.dataset['health']).toBe('failed');
    expect(bmc.textContent).toContain('Other secret');
    expect(within(bmc).getByTestId('vault-rotation').textContent).toContain('Failed');
    expect(within(row('web-2/deploy')).getByTestId('vault-rotation').textContent).toContain('reconciled');

    const web = row('web-1/root');
    expect(web.dataset['health']).toBe('ok');
    expect(within(web).getByTestId('vault-holder').textContent).toContain('Nobody');
    expect(web.textContent).toContain('2 days ago');
    // Administrators rotate any account but a generic secret; no grant of ada's, nothing to reveal.
    expect(screen.getAllByTestId('vault-rotate-button')).toHaveLength(3);
    expect(within(bmc).queryByTestId('vault-rotate-button')).toBeNull();
    expect(screen.queryAllByTestId('vault-reveal-button')).toHaveLength(0);
    // No secret anywhere on the page.
    expect(screen.queryByTestId('vault-reveal-secret')).toBeNull();
  });

  it('shows rotation health prominently: failed first with the error and since when, then unsettled', async () => {
    await openVault();
    const health = await screen.findByTestId('rotation-health');
    expect(health.dataset['failed']).toBe('1');
    expect(within(health).getByTestId('rotation-health-summary').textContent).toContain('1 rotation has failed, 1 not settled');
    const items = within(health).getAllByTestId('rotation-health-item');
    expect(items.map((i) => [i.dataset['account'], i.dataset['health']])).toEqual([
      ['bmc-3/ADMIN', 'failed'],
      ['web-2/deploy', 'unsettled'],
    ]);
    const bmc = items[0] as HTMLElement;
    expect(within(bmc).getByTestId('rotation-health-error').textContent).toContain('password history requires');
    expect(within(bmc).getByTestId('rotation-health-since').textContent).toMatch(/Failing since \d{4}-\d\d-\d\d \d\d:\d\d \(26 h\)/);
    expect(within(items[1] as HTMLElement).queryByTestId('rotation-health-error')).toBeNull();
    // The appliance's secret is changed by hand: no Rotate now, and the item says so.
    expect(within(bmc).queryByTestId('rotation-health-rotate')).toBeNull();
    expect(bmc.textContent).toContain('change it on the device by hand');
    expect(within(items[1] as HTMLElement).getByTestId('rotation-health-rotate')).toBeTruthy();
  });

  it('says when every rotation is settled', async () => {
    await openVault(ADMIN, { vaultAccounts: (now) => [mockVaultAccount({ target: 'web-1', account: 'root' }, now)] });
    const ok = await screen.findByTestId('rotation-health-ok');
    expect(ok.textContent).toContain('Every rotation has settled');
    expect(screen.queryAllByTestId('rotation-health-item')).toHaveLength(0);
  });

  it('keeps a failure listed until a rotation works, and reloads on the live events', async () => {
    const core = await openVault();
    await waitFor(() => expect(rows()).toHaveLength(4));
    core.vault.failRotation('web-1/root', 'web-1 unreachable: connection timed out');
    // The broker's live event reloads the page (the live poll runs every second).
    await waitFor(
      () => expect(screen.getAllByTestId('rotation-health-item').map((i) => i.dataset['account'])).toContain('web-1/root'),
      { timeout: 4000 },
    );
    const item = screen.getAllByTestId('rotation-health-item').find((i) => i.dataset['account'] === 'web-1/root') as HTMLElement;
    expect(item.textContent).toContain('web-1 unreachable');
    expect(await screen.findByTestId('live-toast')).toBeTruthy();
    // A manual refresh does not clear it: only a rotation that works does.
    await fireEvent.click(screen.getByTestId('vault-refresh'));
    await waitFor(() => expect(screen.getAllByTestId('rotation-health-item')).toHaveLength(3));
    core.vault.settleRotation('web-1/root');
    await waitFor(
      () => expect(screen.getAllByTestId('rotation-health-item').map((i) => i.dataset['account'])).not.toContain('web-1/root'),
      { timeout: 4000 },
    );
    expect(within(row('web-1/root')).getByTestId('vault-version').textContent).toBe('v4');
  });

  it('shows a load error with Retry, keeps the last list when a refresh fails, and has an empty state', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: ADMIN }, '');
    core.vault.failNext('list_vault_accounts', { code: 'vault_unavailable', message: 'the key-encryption key is missing' });
    await fireEvent.click(await screen.findByTestId('nav-vault'));
    const error = await screen.findByTestId('vault-error');
    expect(error.dataset['code']).toBe('vault_unavailable');
    expect(error.textContent).toContain('Could not load the vaulted accounts.');
    expect(error.textContent).toContain('cannot open its vault');
    await fireEvent.click(within(error).getByText('Retry'));
    await waitFor(() => expect(rows()).toHaveLength(4));
    core.vault.failNext('list_vault_accounts', { code: 'timeout', message: 'no answer' });
    await fireEvent.click(screen.getByTestId('vault-refresh'));
    expect(await screen.findByTestId('vault-stale')).toBeTruthy();
    expect(rows()).toHaveLength(4);
  });

  it('tells a user without a vaulted entitlement so, with no table', async () => {
    await openVault(ADA);
    const empty = await screen.findByTestId('vault-empty');
    expect(empty.textContent).toContain('None of your entitlements uses a vaulted account');
    expect(screen.queryByRole('table')).toBeNull();
    expect(screen.getByTestId('vault-heading').textContent).toContain('Vaulted accounts you may use');
  });
});

describe('revealing a secret', () => {
  it('offers Reveal under an active grant on the target, checks the reason, and signs through the step-up', async () => {
    const core = await openVault(ADA, { grants: WEB_ROOT_GRANT });
    await waitFor(() => expect(rowNames()).toEqual(['web-1/root']));
    expect(screen.queryByTestId('vault-rotate-button')).toBeNull();
    const button = within(row('web-1/root')).getByTestId('vault-reveal-button');
    await fireEvent.click(button);
    const form = await screen.findByTestId('vault-reveal-form');
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('vault-reveal-reason')));
    expect((within(form).getByTestId('vault-reveal-grant') as HTMLSelectElement).value).toBe('gr-ada-1');

    // No reason, no step-up.
    await fireEvent.click(within(form).getByTestId('vault-reveal-submit'));
    expect(within(form).getByTestId('vault-reveal-reason-error').textContent).toContain('Say why');
    expect(calls(core, 'prepare_reveal')).toHaveLength(0);

    await type('vault-reveal-reason', `  ${REASON} `);
    await fireEvent.click(within(form).getByTestId('vault-reveal-submit'));
    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('Reveal a vaulted secret');
    expect(within(modal).getByTestId('stepup-description').textContent).toContain('Reveal the secret of web-1/root under grant gr-ada-1');
    expect(calls(core, 'prepare_reveal')).toEqual([{ input: { account_id: 'va-web-1-root', grant_id: 'gr-ada-1', reason: REASON } }]);
    await approveStepUp();

    const dialog = await screen.findByTestId('vault-reveal-dialog');
    const secret = within(dialog).getByTestId('vault-reveal-secret').textContent ?? '';
    expect(secret).toMatch(/-Vq7#pL$/);
    expect(within(dialog).getByTestId('vault-reveal-countdown').textContent).toMatch(/^0:(30|29)$/);
    expect(within(dialog).getByTestId('vault-reveal-rotation').textContent).toContain('the broker rotates the secret');
    await waitFor(() => expect(document.activeElement?.id).toBe('vault-reveal-heading'));
    // Never stored: not in web storage, not in the app's other state.
    expect(storageText()).not.toContain(secret);
    // The list now shows ada as the holder, to be rotated when the checkout ends.
    await waitFor(() => expect(within(row('web-1/root')).getByTestId('vault-holder').textContent).toContain('You'));
    expect(within(row('web-1/root')).getByTestId('vault-next').textContent).toContain('When the checkout ends');

    await fireEvent.click(within(dialog).getByTestId('vault-reveal-close'));
    expect(screen.queryByTestId('vault-reveal-dialog')).toBeNull();
    expect(document.body.textContent).not.toContain(secret);
    expect(document.activeElement).toBe(within(row('web-1/root')).getByTestId('vault-reveal-button'));
  });

  it('hides and forgets the secret when its countdown ends', async () => {
    useFakeClock();
    await openVault(ADA, { grants: WEB_ROOT_GRANT, revealShowSecs: 30 });
    await settle();
    await fireEvent.click(within(row('web-1/root')).getByTestId('vault-reveal-button'));
    await type('vault-reveal-reason', REASON);
    await fireEvent.click(screen.getByTestId('vault-reveal-submit'));
    await settle();
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await settle();
    const dialog = screen.getByTestId('vault-reveal-dialog');
    const secret = within(dialog).getByTestId('vault-reveal-secret').textContent ?? '';
    expect(secret).not.toBe('');
    expect(within(dialog).getByTestId('vault-reveal-countdown').textContent).toBe('0:30');
    await settle(20_000);
    expect(within(dialog).getByTestId('vault-reveal-countdown').textContent).toBe('0:10');
    expect(within(dialog).getByTestId('vault-reveal-secret').textContent).toBe(secret);
    await settle(10_500);
    expect(dialog.dataset['hidden']).toBe('true');
    expect(within(dialog).queryByTestId('vault-reveal-secret')).toBeNull();
    expect(within(dialog).queryByTestId('vault-copy')).toBeNull();
    expect(within(dialog).getByTestId('vault-reveal-hidden')).toBeTruthy();
    expect(document.body.textContent).not.toContain(secret);
    expect(storageText()).not.toContain(secret);
    // It says what happens next, and closes.
    expect(within(dialog).getByTestId('vault-reveal-rotation').textContent).toContain('rotates the secret');
    await fireEvent.click(within(dialog).getByTestId('vault-reveal-close'));
    expect(screen.queryByTestId('vault-reveal-dialog')).toBeNull();
  });

  it('copies to the clipboard and clears it after 30 s', async () => {
    useFakeClock();
    const writes: string[] = [];
    vi.stubGlobal('navigator', {
      ...navigator,
      clipboard: {
        writeText: vi.fn((t: string) => {
          writes.push(t);
          return Promise.resolve();
        }),
      },
    });
    await openVault(ADA, { grants: WEB_ROOT_GRANT, revealShowSecs: 120 });
    await settle();
    await fireEvent.click(within(row('web-1/root')).getByTestId('vault-reveal-button'));
    await type('vault-reveal-reason', REASON);
    await fireEvent.click(screen.getByTestId('vault-reveal-submit'));
    await settle();
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await settle();
    const secret = screen.getByTestId('vault-reveal-secret').textContent ?? '';
    await fireEvent.click(screen.getByTestId('vault-copy'));
    await settle();
    expect(writes).toEqual([secret]);
    expect(screen.getByTestId('vault-copied').textContent).toContain('cleared in 30 s');
    await settle(CLIPBOARD_CLEAR_MS - 1_000);
    expect(writes).toEqual([secret]);
    await settle(1_000);
    expect(writes).toEqual([secret, '']);
    // Still shown (120 s), and closing later has nothing left to clear.
    expect(screen.getByTestId('vault-reveal-secret').textContent).toBe(secret);
    await fireEvent.click(screen.getByTestId('vault-reveal-close'));
    await settle();
    expect(writes).toEqual([secret, '']);
  });

  it('clears the clipboard at once when the dialog closes before the 30 s', async () => {
    const writes: string[] = [];
    vi.stubGlobal('navigator', {
      ...navigator,
      clipboard: {
        writeText: vi.fn((t: string) => {
          writes.push(t);
          return Promise.resolve();
        }),
      },
    });
    await openVault(ADA, { grants: WEB_ROOT_GRANT });
    const secret = await revealWebRoot();
    await fireEvent.click(screen.getByTestId('vault-copy'));
    await waitFor(() => expect(writes).toEqual([secret]));
    await fireEvent.keyDown(window, { key: 'Escape' });
    expect(screen.queryByTestId('vault-reveal-dialog')).toBeNull();
    await waitFor(() => expect(writes).toEqual([secret, '']));
  });

  it('says who holds an exclusive account and does not offer its reveal, and shows refusals in vault words', async () => {
    const core = await openVault(ADA, {
      grants: withDefaults(
        (now) => activeGrant(now, 30 * MIN, { role: 'root' }),
        (now) => activeGrant(now, 20 * MIN, { id: 'gr-ada-2', target: 'db-prod-1', role: 'app_owner', entitlement: 'db-prod-dba' }),
      ),
    });
    await waitFor(() => expect(rowNames()).toEqual(['db-prod-1/app_owner', 'web-1/root']));
    const held = within(row('db-prod-1/app_owner')).getByTestId('vault-reveal-button') as HTMLButtonElement;
    expect(held.disabled).toBe(true);
    expect(held.title).toContain('Checked out by bob');

    // Refused before the key: the form says why, in vault words.
    core.vault.failNext('prepare_reveal', { code: 'forbidden', message: 'the entitlement web-root does not allow reveal' });
    await fireEvent.click(within(row('web-1/root')).getByTestId('vault-reveal-button'));
    await type('vault-reveal-reason', REASON);
    await fireEvent.click(screen.getByTestId('vault-reveal-submit'));
    const error = await screen.findByTestId('vault-reveal-error');
    expect(error.textContent).toContain('revealing needs a grant whose entitlement allows it');
    expect(error.textContent).toContain('does not allow reveal');
    expect(screen.queryByTestId('stepup-modal')).toBeNull();

    // Refused after the key (someone checked it out meanwhile): the step-up dialog says who.
    core.vault.failNext('confirm_reveal', { code: 'checked_out', message: 'web-1/root is checked out by carol until 14:05' });
    await fireEvent.click(screen.getByTestId('vault-reveal-submit'));
    const modal = await screen.findByTestId('stepup-modal');
    await fireEvent.click(within(modal).getByTestId('stepup-approve'));
    const refused = await within(modal).findByTestId('stepup-error');
    expect(refused.dataset['code']).toBe('checked_out');
    expect(refused.textContent).toContain('Someone else has this account checked out');
    expect(refused.textContent).toContain('carol');
    expect((within(modal).getByTestId('stepup-approve') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(within(modal).getByTestId('stepup-cancel'));
    expect(screen.queryByTestId('vault-reveal-dialog')).toBeNull();
  });
});

describe('rotating a secret', () => {
  it('lets an administrator rotate now with a reason and a step-up, and says how it went', async () => {
    const core = await openVault();
    await waitFor(() => expect(rows()).toHaveLength(4));
    await fireEvent.click(within(row('web-1/root')).getByTestId('vault-rotate-button'));
    const form = await screen.findByTestId('vault-rotate-form');
    await fireEvent.click(within(form).getByTestId('vault-rotate-submit'));
    expect(within(form).getByTestId('vault-rotate-reason-error')).toBeTruthy();
    await type('vault-rotate-reason', 'The admin who knew it left');
    await fireEvent.click(within(form).getByTestId('vault-rotate-submit'));
    const modal = await approveStepUp();
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('Rotate a vaulted secret');
    expect(calls(core, 'prepare_rotation')).toEqual([{ input: { account_id: 'va-web-1-root', reason: 'The admin who knew it left' } }]);
    await waitFor(() => expect(within(row('web-1/root')).getByTestId('vault-version').textContent).toBe('v4'));
    expect(screen.getByTestId('vault-notice').textContent).toContain('Rotated web-1/root: it is at version 4 now.');
    expect(screen.queryByTestId('vault-rotate-form')).toBeNull();

    // A rotation that fails is an answer, not an error: the notice and the health list say so.
    core.vault.rotationFailure = 'web-2: authorized_keys is not writable';
    await fireEvent.click(within(screen.getByTestId('rotation-health')).getByTestId('rotation-health-rotate'));
    expect((await screen.findByTestId('vault-rotate-form')).dataset['account']).toBe('web-2/deploy');
    await type('vault-rotate-reason', 'Settle it now');
    await fireEvent.click(screen.getByTestId('vault-rotate-submit'));
    await approveStepUp();
    await waitFor(() => expect(screen.getByTestId('vault-notice').textContent).toContain('The rotation of web-2/deploy failed'));
    expect(screen.getByTestId('vault-notice').textContent).toContain('authorized_keys is not writable');
    expect(screen.getByTestId('vault-notice').textContent).toContain('The previous secret is still valid');
    await waitFor(() => expect(row('web-2/deploy').dataset['health']).toBe('failed'));
  });
});

describe('vault helpers', () => {
  const now = 1_000_000_000_000;
  const acct = (fields: Partial<VaultAccountView> & { target: string; account: string }): VaultAccountView =>
    mockVaultAccount(fields, now);

  it('reads rotation health from the broker status', () => {
    expect(rotationHealth(acct({ target: 'a', account: 'x' }))).toBe('ok');
    const pending = acct({ target: 'a', account: 'p' });
    pending.rotation.state = 'applied';
    expect(rotationHealth(pending)).toBe('unsettled');
    const failing = acct({ target: 'a', account: 'f' });
    failing.rotation.last_result = 'failed';
    failing.rotation.failing_since_ms = now - 10;
    const older = acct({ target: 'b', account: 'f' });
    older.rotation.state = 'failed';
    older.rotation.failing_since_ms = now - 1000;
    expect(needsAttention([pending, failing, acct({ target: 'z', account: 'ok' }), older]).map((a) => a.name)).toEqual([
      'b/f',
      'a/f',
      'a/p',
    ]);
    expect(sortAccounts([acct({ target: 'a', account: 'ok' }), pending, failing]).map((a) => a.name)).toEqual(['a/f', 'a/p', 'a/ok']);
  });

  it('offers only active grants for the account (its target and role), the longest first', () => {
    const account = acct({ target: 'web-1', account: 'root' });
    const grants = [
      activeGrant(now, MIN, { id: 'g-deploy', role: 'deploy' }),
      activeGrant(now, MIN, { id: 'g-root', role: 'root' }),
      activeGrant(now, 9 * MIN, { id: 'g-root-2', role: 'root' }),
      activeGrant(now, -MIN, { id: 'g-over', role: 'root' }),
      activeGrant(now, MIN, { id: 'g-other', target: 'web-2', role: 'root' }),
      { ...activeGrant(now, MIN, { id: 'g-pending', role: 'root' }), state: 'pending' },
    ];
    expect(revealGrants(account, grants, now).map((g) => g.id)).toEqual(['g-root-2', 'g-root']);
    expect(revealGrants(account, null, now)).toEqual([]);
  });

  it('checks a reason like the core does', () => {
    expect(reasonProblem('ok')).toBeNull();
    expect(reasonProblem('  ')).toContain('Say why');
    expect(reasonProblem('two\nlines')).toContain('One line');
    expect(reasonProblem('zero\u200bwidth')).toContain('One line');
    expect(reasonProblem('x'.repeat(1001))).toContain('At most');
  });
});
