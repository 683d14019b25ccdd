import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { CONFIGURED, renderApp, settle, useFakeClock } from './helpers';

const USER = { name: 'ada', roles: ['engineer'] };
const HOSTILE = '<img src=x onerror=alert(1)> Add key "x" & <script>globalThis.__pawPwned = 9</script>';

declare global {
  var __pawPwned: number | undefined;
}

function rows(): HTMLElement[] {
  return screen.getAllByTestId('key-row');
}

function row(id: string): HTMLElement {
  const found = rows().find((r) => r.dataset['keyId'] === id);
  if (found === undefined) throw new Error(`no row ${id}`);
  return found;
}

async function openKeys(options: Parameters<typeof renderApp>[0] = {}) {
  const result = renderApp({ settings: CONFIGURED, user: USER, ...options }, '#/keys');
  await screen.findByTestId('keys-list');
  return result;
}

async function startAdd(name: string): Promise<HTMLElement> {
  await fireEvent.input(screen.getByTestId('key-add-name'), { target: { value: name } });
  await fireEvent.click(screen.getByTestId('key-add'));
  return screen.findByTestId('stepup-modal');
}

describe('security keys page', () => {
  it('keeps the honest empty state while signed out', async () => {
    renderApp({}, '#/keys');
    const page = await screen.findByTestId('page-keys');
    expect(page.textContent).toContain('Coming in a later release');
    expect(screen.queryByTestId('keys-list')).toBeNull();
  });

  it('lists keys with their name, added date and status', async () => {
    await openKeys({
      keys: [
        { id: 'k-1', name: 'YubiKey 5C', created_at_ms: Date.UTC(2026, 0, 12), revoked_at_ms: null, locked: false },
        { id: 'k-2', name: 'Old key', created_at_ms: Date.UTC(2025, 5, 1), revoked_at_ms: Date.UTC(2026, 0, 2), locked: false },
        { id: 'k-3', name: 'Locked key', created_at_ms: Date.UTC(2025, 5, 1), revoked_at_ms: null, locked: true },
      ],
    });
    expect(screen.getByTestId('page-keys')).toBeTruthy();
    expect(rows().map((r) => [r.dataset['keyId'], r.dataset['status']])).toEqual([
      ['k-1', 'active'],
      ['k-2', 'revoked'],
      ['k-3', 'locked'],
    ]);
    expect(row('k-1').textContent).toContain('YubiKey 5C');
    expect(row('k-1').textContent).toContain('Added');
    expect(row('k-1').textContent).toContain('2026');
    expect(row('k-2').textContent).toContain('revoked');
    expect(row('k-2').classList.contains('revoked')).toBe(true);
    expect(screen.getByTestId('key-revoke-k-1')).toBeTruthy();
    expect(screen.queryByTestId('key-revoke-k-2')).toBeNull();
    expect(screen.queryByTestId('key-revoke-k-3')).toBeNull();
    expect(screen.queryByTestId('key-rename-k-2')).toBeNull();
  });

  it('renames a key inline with Enter, and cancels with Escape', async () => {
    const { core } = await openKeys();
    await fireEvent.click(screen.getByTestId('key-rename-k-1'));
    const input = screen.getByTestId<HTMLInputElement>('key-rename-input-k-1');
    await waitFor(() => expect(document.activeElement).toBe(input));
    expect(input.value).toBe('YubiKey 5C');
    await fireEvent.input(input, { target: { value: 'Work key' } });
    await fireEvent.keyDown(input, { key: 'Enter' });
    await waitFor(() => expect(row('k-1').textContent).toContain('Work key'));
    expect(screen.queryByTestId('key-rename-input-k-1')).toBeNull();
    expect(core.calls.filter((c) => c.cmd === 'rename_key')).toEqual([
      { cmd: 'rename_key', args: { input: { id: 'k-1', name: 'Work key' } } },
    ]);

    await fireEvent.click(screen.getByTestId('key-rename-k-2'));
    const second = screen.getByTestId<HTMLInputElement>('key-rename-input-k-2');
    await fireEvent.input(second, { target: { value: 'Nope' } });
    await fireEvent.keyDown(second, { key: 'Escape' });
    await waitFor(() => expect(screen.queryByTestId('key-rename-input-k-2')).toBeNull());
    expect(row('k-2').textContent).toContain('Backup key');
    expect(core.calls.filter((c) => c.cmd === 'rename_key')).toHaveLength(1);
  });

  it('shows a rename failure by code', async () => {
    await openKeys();
    await fireEvent.click(screen.getByTestId('key-rename-k-1'));
    await fireEvent.input(screen.getByTestId('key-rename-input-k-1'), { target: { value: 'x'.repeat(65) } });
    await fireEvent.click(screen.getByTestId('key-rename-save-k-1'));
    expect((await screen.findByTestId('keys-error')).dataset['code']).toBe('bad_request');
  });
});

describe('step-up', () => {
  it('shows the description verbatim as text, the purpose, hash and countdown', async () => {
    const { core, container } = await openKeys();
    core.stepUpDescription = HOSTILE;
    const modal = await startAdd('Spare key');
    expect(modal.getAttribute('role')).toBe('dialog');
    expect(modal.getAttribute('aria-modal')).toBe('true');
    expect(within(modal).getByText('Confirm with your security key')).toBeTruthy();
    expect(screen.getByTestId('stepup-description').textContent).toBe(HOSTILE);
    expect(screen.getByTestId('stepup-purpose').textContent).toContain('Security key management');
    const hash = screen.getByTestId('stepup-hash');
    const full = hash.getAttribute('title') ?? '';
    expect(full).toMatch(/^[0-9a-f]{64}$/);
    expect(hash.textContent).toBe(`${full.slice(0, 16)}…`);
    expect(screen.getByTestId('stepup-countdown').textContent?.trim()).toBe('1:00');
    expect(container.ownerDocument.querySelectorAll('img, script')).toHaveLength(0);
    expect(globalThis.__pawPwned).toBeUndefined();
    expect(core.calls.filter((c) => c.cmd === 'prepare_step_up')).toEqual([
      { cmd: 'prepare_step_up', args: { action: { op: 'add', name: 'Spare key' } } },
    ]);
  });

  it('moves focus into the dialog, traps Tab, and makes the rest of the app inert', async () => {
    await openKeys();
    const modal = await startAdd('Spare key');
    await waitFor(() => expect(document.activeElement).toBe(modal));
    expect(document.querySelector<HTMLElement>('.frame')?.inert).toBe(true);
    const cancel = screen.getByTestId('stepup-cancel');
    const approve = screen.getByTestId('stepup-approve');
    approve.focus();
    await fireEvent.keyDown(approve, { key: 'Tab' });
    expect(document.activeElement).toBe(cancel);
    await fireEvent.keyDown(cancel, { key: 'Tab', shiftKey: true });
    expect(document.activeElement).toBe(approve);
  });

  it('approve calls confirm_step_up and updates the list', async () => {
    const { core } = await openKeys();
    await startAdd('Spare key');
    const id = [...core.pending.keys()][0];
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
    expect(core.calls.filter((c) => c.cmd === 'confirm_step_up')).toEqual([{ cmd: 'confirm_step_up', args: { id } }]);
    expect(rows()).toHaveLength(3);
    expect(rows()[2]?.textContent).toContain('Spare key');
    expect(rows()[2]?.dataset['status']).toBe('active');
    await waitFor(() => expect(screen.getByTestId<HTMLInputElement>('key-add-name').value).toBe(''));
    expect(screen.getByTestId('keys-notice').textContent).toContain('Added');
  });

  it('shows "Touch your security key…" while the confirmation is pending', async () => {
    await openKeys({ delayMs: 30 });
    await startAdd('Spare key');
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    const modal = screen.getByTestId('stepup-modal');
    expect(within(modal).getByTestId('touch-key')).toBeTruthy();
    expect(screen.getByTestId('stepup-approve').textContent).toContain('Touch your security key');
    expect(screen.getByTestId<HTMLButtonElement>('stepup-approve').disabled).toBe(true);
    await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
  });

  it('cancel calls cancel_step_up and leaves the list alone', async () => {
    const { core } = await openKeys();
    await startAdd('Spare key');
    const id = [...core.pending.keys()][0];
    await fireEvent.click(screen.getByTestId('stepup-cancel'));
    expect(screen.queryByTestId('stepup-modal')).toBeNull();
    await waitFor(() => expect(core.calls.filter((c) => c.cmd === 'cancel_step_up')).toEqual([
      { cmd: 'cancel_step_up', args: { id } },
    ]));
    expect(core.calls.some((c) => c.cmd === 'confirm_step_up')).toBe(false);
    expect(rows()).toHaveLength(2);
    expect(core.pending.size).toBe(0);
    expect(document.querySelector<HTMLElement>('.frame')?.inert).toBe(false);
  });

  it('Escape closes the dialog with cancel and gives focus back', async () => {
    const { core } = await openKeys();
    const revoke = screen.getByTestId('key-revoke-k-2');
    revoke.focus();
    await fireEvent.click(revoke);
    const modal = await screen.findByTestId('stepup-modal');
    await waitFor(() => expect(document.activeElement).toBe(modal));
    await fireEvent.keyDown(modal, { key: 'Escape' });
    expect(screen.queryByTestId('stepup-modal')).toBeNull();
    await waitFor(() => expect(core.calls.some((c) => c.cmd === 'cancel_step_up')).toBe(true));
    expect(core.calls.some((c) => c.cmd === 'confirm_step_up')).toBe(false);
    expect(row('k-2').dataset['status']).toBe('active');
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('key-revoke-k-2')));
  });

  it('revoke marks the key revoked after approval', async () => {
    const { core } = await openKeys();
    await fireEvent.click(screen.getByTestId('key-revoke-k-2'));
    await screen.findByTestId('stepup-modal');
    expect(screen.getByTestId('stepup-description').textContent).toContain('Revoke the security key "Backup key"');
    expect(core.calls.filter((c) => c.cmd === 'prepare_step_up')).toEqual([
      { cmd: 'prepare_step_up', args: { action: { op: 'revoke', id: 'k-2' } } },
    ]);
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await waitFor(() => expect(row('k-2').dataset['status']).toBe('revoked'));
    expect(row('k-2').textContent).toContain('revoked');
    expect(screen.queryByTestId('key-revoke-k-2')).toBeNull();
    expect(row('k-1').dataset['status']).toBe('active');
  });

  it('disables approve when the countdown reaches zero', async () => {
    useFakeClock();
    const { core } = renderApp({ settings: CONFIGURED, user: USER }, '#/keys');
    await settle();
    core.stepUpExpiresInSecs = 3;
    await fireEvent.input(screen.getByTestId('key-add-name'), { target: { value: 'Spare key' } });
    await fireEvent.click(screen.getByTestId('key-add'));
    await settle();
    const approve = screen.getByTestId<HTMLButtonElement>('stepup-approve');
    const countdown = screen.getByTestId('stepup-countdown');
    expect(countdown.textContent?.trim()).toBe('0:03');
    expect(approve.disabled).toBe(false);
    await settle(2_000);
    expect(countdown.textContent?.trim()).toBe('0:01');
    expect(approve.disabled).toBe(false);
    await settle(1_000);
    expect(countdown.dataset['expired']).toBe('true');
    expect(approve.disabled).toBe(true);
    expect(approve.textContent).toContain('expired');
    expect(screen.getByTestId('stepup-expired').textContent).toContain('expired');
    await fireEvent.click(approve);
    await settle();
    expect(core.calls.some((c) => c.cmd === 'confirm_step_up')).toBe(false);
  });

  it('shows a rejected key inside the dialog and allows a retry', async () => {
    const { core } = await openKeys();
    await startAdd('Spare key');
    core.confirmFailure = { code: 'webauthn_rejected', message: 'user did not touch' };
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    const error = await screen.findByTestId('stepup-error');
    expect(error.dataset['code']).toBe('webauthn_rejected');
    expect(screen.getByTestId<HTMLButtonElement>('stepup-approve').disabled).toBe(false);
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
    expect(rows()).toHaveLength(3);
  });

  it('disables approve after challenge_invalid', async () => {
    const { core } = await openKeys();
    await startAdd('Spare key');
    core.pending.clear(); // the broker forgot it
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    const error = await screen.findByTestId('stepup-error');
    expect(error.dataset['code']).toBe('challenge_invalid');
    expect(screen.getByTestId<HTMLButtonElement>('stepup-approve').disabled).toBe(true);
  });

  it('shows a failure to prepare next to the action, without a dialog', async () => {
    const { core } = await openKeys();
    core.prepareFailure = { code: 'rate_limited', message: 'slow down' };
    await fireEvent.input(screen.getByTestId('key-add-name'), { target: { value: 'Spare key' } });
    await fireEvent.click(screen.getByTestId('key-add'));
    const error = await screen.findByTestId('keys-error');
    expect(error.dataset['code']).toBe('rate_limited');
    expect(screen.queryByTestId('stepup-modal')).toBeNull();
  });

  it('labels the virtual key inside the dialog', async () => {
    await openKeys({ build: { version: '0.1.0', debug: false, virtual_key: true } });
    const modal = await startAdd('Spare key');
    expect(within(modal).getByTestId('virtual-key-banner').textContent).toContain('INSECURE');
  });
});
