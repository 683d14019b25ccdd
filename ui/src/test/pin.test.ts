import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../lib/ipc';
import { authErrorText } from '../lib/util/errors';
import { CONFIGURED, renderApp, settle, useFakeClock } from './helpers';

const PIN = '246810';
const USER = { name: 'ada', roles: ['engineer'] };

function pinInput(): HTMLInputElement {
  return screen.getByTestId<HTMLInputElement>('pin-input');
}

function pinSubmit(): HTMLButtonElement {
  return screen.getByTestId<HTMLButtonElement>('pin-submit');
}

function frameInert(): boolean | undefined {
  return document.querySelector<HTMLElement>('.frame')?.inert;
}

/** Whether `element` or an ancestor is inert (jsdom keeps `inert` as a property, not an attribute). */
function insideInert(element: HTMLElement): boolean {
  for (let at: HTMLElement | null = element; at !== null; at = at.parentElement) if (at.inert) return true;
  return false;
}

async function typePin(value: string): Promise<void> {
  await fireEvent.input(pinInput(), { target: { value } });
}

/** Renders the app signed out with a PIN-protected key and starts a sign-in; resolves with the PIN dialog. */
async function signInWithPin(options: Parameters<typeof renderApp>[0] = {}) {
  const result = renderApp({ settings: CONFIGURED, pin: PIN, ...options });
  await screen.findByTestId('signin-panel');
  await fireEvent.input(screen.getByTestId('signin-user'), { target: { value: 'ada' } });
  await fireEvent.click(screen.getByTestId('signin-submit'));
  const dialog = await screen.findByTestId('pin-dialog');
  return { ...result, dialog };
}

function submitted(core: { calls: { cmd: string; args: unknown }[] }): unknown[] {
  return core.calls.filter((c) => c.cmd === 'submit_pin').map((c) => c.args);
}

describe('security key PIN during sign-in', () => {
  it('asks for the PIN in a modal dialog, with the attempts left', async () => {
    const { dialog } = await signInWithPin();
    expect(dialog.getAttribute('role')).toBe('dialog');
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    const title = document.getElementById(dialog.getAttribute('aria-labelledby') ?? '');
    expect(title?.textContent).toBe("Enter your security key's PIN");
    const input = pinInput();
    expect(input.type).toBe('password');
    expect(input.getAttribute('autocomplete')).toBe('off');
    expect(input.getAttribute('spellcheck')).toBe('false');
    expect(input.maxLength).toBe(63);
    expect(screen.queryByTestId('pin-wrong')).toBeNull();
    const retries = screen.getByTestId('pin-retries');
    expect(retries.textContent?.replace(/\s+/g, ' ').trim()).toBe('8 attempts left before the key locks itself');
    expect(retries.dataset['warning']).toBe('false');
    expect(frameInert()).toBe(true);
    expect(screen.queryAllByTestId('virtual-key-banner')).toHaveLength(0);
  });

  it('says a wrong PIN was wrong, then signs in with the right one and closes', async () => {
    const { core } = await signInWithPin();
    await typePin('0000');
    await fireEvent.click(pinSubmit());
    expect(await screen.findByTestId('pin-wrong')).toBeTruthy();
    expect(screen.getByTestId('pin-wrong').textContent).toContain('Wrong PIN.');
    expect(screen.getByTestId('pin-retries').textContent).toContain('7 attempts left');
    expect(screen.getByTestId('signin-panel')).toBeTruthy();

    await typePin(PIN);
    await fireEvent.click(pinSubmit());
    await screen.findByTestId('page-access');
    expect(screen.queryByTestId('pin-dialog')).toBeNull();
    expect(screen.getByTestId('status-user').textContent).toContain('ada');
    expect(frameInert()).toBe(false);
    expect(submitted(core)).toEqual([{ input: { pin: '0000' } }, { input: { pin: PIN } }]);
    expect(core.calls.filter((c) => c.cmd === 'login')).toHaveLength(1);
    expect(core.pinRetries).toBe(8);
  });

  it('clears the field as soon as the PIN is submitted', async () => {
    await signInWithPin();
    await typePin('0000');
    expect(pinInput().value).toBe('0000');
    await fireEvent.click(pinSubmit());
    expect(pinInput().value).toBe('');
    await screen.findByTestId('pin-wrong'); // asked again: still empty
    expect(pinInput().value).toBe('');
  });

  it('forgets a typed PIN when the dialog closes without submitting', async () => {
    await signInWithPin();
    await typePin('1357');
    await fireEvent.click(screen.getByTestId('pin-cancel'));
    await screen.findByTestId('auth-error');
    await fireEvent.click(screen.getByTestId('signin-submit'));
    await screen.findByTestId('pin-dialog');
    expect(pinInput().value).toBe('');
  });

  it('ends sign-in with pin_invalid after three wrong PINs', async () => {
    const { core } = await signInWithPin();
    for (let n = 8; n > 5; n--) {
      await waitFor(() => expect(screen.getByTestId('pin-retries').textContent).toContain(`${n} attempts left`));
      await typePin('1111');
      await fireEvent.click(pinSubmit());
    }
    const error = await screen.findByTestId('auth-error');
    expect(error.dataset['code']).toBe('pin_invalid');
    expect(error.textContent).toContain('Wrong PIN three times');
    expect(screen.queryByTestId('pin-dialog')).toBeNull();
    expect(screen.getByTestId('signin-panel')).toBeTruthy();
    expect(core.pinRetries).toBe(5);
  });

  it('warns when few attempts are left, and reports a blocked PIN', async () => {
    const { core } = renderApp({ settings: CONFIGURED, pin: PIN });
    core.pinRetries = 2;
    await screen.findByTestId('signin-panel');
    await fireEvent.input(screen.getByTestId('signin-user'), { target: { value: 'ada' } });
    await fireEvent.click(screen.getByTestId('signin-submit'));
    const retries = await screen.findByTestId('pin-retries');
    expect(retries.dataset['warning']).toBe('true');
    expect(retries.classList.contains('warning')).toBe(true);
    expect(retries.textContent).toContain('2 attempts left');
    await typePin('1111');
    await fireEvent.click(pinSubmit());
    await waitFor(() => expect(screen.getByTestId('pin-retries').textContent).toContain('1 attempt left'));
    await typePin('1111');
    await fireEvent.click(pinSubmit());
    const error = await screen.findByTestId('auth-error');
    expect(error.dataset['code']).toBe('pin_blocked');
    expect(error.textContent).toContain('PIN is blocked');
    expect(screen.queryByTestId('pin-dialog')).toBeNull();
  });

  it('Cancel ends sign-in as cancelled and closes the dialog', async () => {
    const { core } = await signInWithPin();
    await fireEvent.click(screen.getByTestId('pin-cancel'));
    expect(screen.queryByTestId('pin-dialog')).toBeNull();
    const error = await screen.findByTestId('auth-error');
    expect(error.dataset['code']).toBe('key_cancelled');
    expect(error.textContent).toContain('Cancelled.');
    expect(core.calls.filter((c) => c.cmd === 'cancel_key_prompt')).toHaveLength(1);
    expect(submitted(core)).toEqual([]);
    expect(screen.getByTestId('signin-panel')).toBeTruthy();
    expect(screen.getByTestId<HTMLButtonElement>('signin-submit').disabled).toBe(false);
    expect(frameInert()).toBe(false);
  });

  it('Escape cancels', async () => {
    const { core } = await signInWithPin();
    await waitFor(() => expect(document.activeElement).toBe(pinInput()));
    await fireEvent.keyDown(pinInput(), { key: 'Escape' });
    expect(screen.queryByTestId('pin-dialog')).toBeNull();
    expect((await screen.findByTestId('auth-error')).dataset['code']).toBe('key_cancelled');
    expect(core.calls.filter((c) => c.cmd === 'cancel_key_prompt')).toHaveLength(1);
  });

  it('keeps "Unlock key" disabled under four characters', async () => {
    const { core } = await signInWithPin();
    expect(pinSubmit().disabled).toBe(true);
    await typePin('123');
    expect(pinSubmit().disabled).toBe(true);
    const form = pinInput().form;
    if (form === null) throw new Error('no form');
    await fireEvent.submit(form); // Enter in the field
    expect(submitted(core)).toEqual([]);
    await typePin('1234');
    expect(pinSubmit().disabled).toBe(false);
  });

  it('puts keyboard focus in the PIN field and keeps Tab inside the dialog', async () => {
    await signInWithPin();
    await waitFor(() => expect(document.activeElement).toBe(pinInput()));
    await typePin('1234');
    const cancel = screen.getByTestId('pin-cancel');
    pinSubmit().focus();
    await fireEvent.keyDown(pinSubmit(), { key: 'Tab' });
    expect(document.activeElement).toBe(pinInput());
    await fireEvent.keyDown(pinInput(), { key: 'Tab', shiftKey: true });
    expect(document.activeElement).toBe(pinSubmit());
    cancel.focus();
    await fireEvent.keyDown(cancel, { key: 'Tab' });
    expect(document.activeElement).toBe(cancel); // not the last one: no wrap (jsdom moves no focus itself)
  });

  it('shows a PIN the core refused, and stays open for another try', async () => {
    const { core } = await signInWithPin();
    await typePin('ü'.repeat(40)); // 40 characters, 80 bytes: over the core's 63
    await fireEvent.click(pinSubmit());
    const error = await screen.findByTestId('pin-error');
    expect(error.dataset['code']).toBe('bad_request');
    expect(error.textContent).toContain('The PIN was not taken');
    expect(screen.getByTestId('pin-dialog')).toBeTruthy();
    expect(pinInput().value).toBe('');
    await waitFor(() => expect(document.activeElement).toBe(pinInput()));
    await typePin(PIN);
    await fireEvent.click(pinSubmit());
    await screen.findByTestId('page-access');
    expect(submitted(core)).toHaveLength(2);
  });

  it('blocks the Alt+digit area shortcuts while open', async () => {
    await signInWithPin();
    await fireEvent.keyDown(window, { key: '9', code: 'Digit9', altKey: true });
    expect(screen.queryByTestId('page-settings')).toBeNull();
    expect(screen.getByTestId('pin-dialog')).toBeTruthy();
    expect(window.location.hash).not.toContain('settings');
  });

  it('labels the virtual key inside the dialog', async () => {
    const { dialog } = await signInWithPin({ build: { version: '0.1.0', debug: false, virtual_key: true } });
    expect(within(dialog).getByTestId('virtual-key-banner').textContent).toContain('INSECURE');
  });

  it('asks for the PIN when registering a key too', async () => {
    renderApp({ settings: CONFIGURED, pin: PIN });
    await screen.findByTestId('signin-panel');
    await fireEvent.click(screen.getByTestId('enroll-open'));
    await fireEvent.input(screen.getByTestId('enroll-code'), { target: { value: 'PAW-INVITE-1' } });
    await fireEvent.click(screen.getByTestId('enroll-submit'));
    await screen.findByTestId('pin-dialog');
    await typePin(PIN);
    await fireEvent.click(pinSubmit());
    await screen.findByTestId('page-access');
    expect(screen.queryByTestId('pin-dialog')).toBeNull();
  });
});

describe('touch prompt', () => {
  it('waits while the key asks for its PIN, then says "touch" when the key waits for one', async () => {
    useFakeClock();
    renderApp({ settings: CONFIGURED, pin: PIN, delayMs: 1_000 });
    await settle(1_000);
    await fireEvent.input(screen.getByTestId('signin-user'), { target: { value: 'ada' } });
    await fireEvent.click(screen.getByTestId('signin-submit'));
    await settle();
    expect(screen.getByTestId('pin-dialog')).toBeTruthy();
    const touch = screen.getByTestId('touch-key');
    expect(touch.dataset['state']).toBe('waiting');
    expect(touch.textContent).toContain('Waiting for your security key…');
    expect(touch.textContent).not.toContain('Touch your security key');
    expect(touch.textContent).toContain('enter its PIN if asked'); // the detail stays

    await typePin(PIN);
    await fireEvent.click(pinSubmit());
    await settle();
    expect(screen.queryByTestId('pin-dialog')).toBeNull();
    await settle(200); // next poll
    expect(touch.dataset['state']).toBe('touch');
    expect(touch.textContent).toContain('Touch your security key…');
    expect(touch.textContent).toContain('enter its PIN if asked');

    await settle(1_000); // touched; then the status refresh
    await settle(1_000);
    expect(screen.getByTestId('page-access')).toBeTruthy();
  });
});

describe('security key PIN during a step-up', () => {
  it('appears above the step-up dialog; cancelling it leaves the step-up open', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: USER, pin: PIN }, '#/keys');
    await screen.findByTestId('keys-list');
    await fireEvent.input(screen.getByTestId('key-add-name'), { target: { value: 'Spare key' } });
    await fireEvent.click(screen.getByTestId('key-add'));
    const stepup = await screen.findByTestId('stepup-modal');
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await screen.findByTestId('pin-dialog');
    expect(insideInert(stepup)).toBe(true);
    expect(insideInert(screen.getByTestId('pin-dialog'))).toBe(false);
    await waitFor(() => expect(document.activeElement).toBe(pinInput()));

    await fireEvent.keyDown(pinInput(), { key: 'Escape' });
    const error = await screen.findByTestId('stepup-error');
    expect(error.dataset['code']).toBe('key_cancelled');
    expect(screen.queryByTestId('pin-dialog')).toBeNull();
    expect(screen.getByTestId('stepup-modal')).toBe(stepup);
    expect(insideInert(stepup)).toBe(false);
    expect(screen.getByTestId<HTMLButtonElement>('stepup-approve').disabled).toBe(false);

    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await screen.findByTestId('pin-dialog');
    await typePin(PIN);
    await fireEvent.click(pinSubmit());
    await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
    expect(screen.getAllByTestId('key-row')).toHaveLength(3);
    expect(core.calls.filter((c) => c.cmd === 'confirm_step_up')).toHaveLength(2);
  });
});

describe('error texts for the security key codes', () => {
  const KEY_CODES: ErrorCode[] = [
    'security_key_missing',
    'pin_invalid',
    'pin_blocked',
    'pin_not_set',
    'key_cancelled',
    'key_timeout',
    'keyring_unavailable',
  ];
  const fallback = authErrorText({ code: 'internal', message: '' });

  it.each(KEY_CODES)('%s is listed and has its own text', (code) => {
    expect(ERROR_CODES).toContain(code);
    const text = authErrorText({ code, message: 'detail' });
    expect(text).not.toBe(fallback);
    expect(text).not.toContain('detail');
  });

  it('gives each of them a different text', () => {
    const texts = KEY_CODES.map((code) => authErrorText({ code, message: '' }));
    expect(new Set(texts).size).toBe(KEY_CODES.length);
  });
});
