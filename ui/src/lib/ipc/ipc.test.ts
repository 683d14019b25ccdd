import { afterEach, describe, expect, it } from 'vitest';
import {
  appStatus,
  cancelStepUp,
  confirmStepUp,
  enroll,
  ERROR_CODES,
  getSettings,
  listKeys,
  login,
  logout,
  openExternal,
  prepareStepUp,
  renameKey,
  saveSettings,
  toApiError,
} from './index';
import { installMockCore, resetMockCore } from './mock';

afterEach(() => resetMockCore());

describe('toApiError', () => {
  it('passes a well-formed ApiError through, keeping only code and message', () => {
    const error = toApiError({ code: 'broker_untrusted', message: 'bad cert', extra: 'dropped' });
    expect(error).toEqual({ code: 'broker_untrusted', message: 'bad cert' });
  });

  it.each(ERROR_CODES)('accepts the code %s', (code) => {
    expect(toApiError({ code, message: 'm' }).code).toBe(code);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['an Error', new Error('boom')],
    ['an unknown code', { code: 'nope', message: 'x' }],
    ['a code that is not a string', { code: 7, message: 'x' }],
    ['a missing message', { code: 'timeout' }],
    ['a message that is not a string', { code: 'timeout', message: { text: 'x' } }],
    ['an array', ['internal', 'x']],
  ])('maps %s to internal', (_label, reason) => {
    const error = toApiError(reason);
    expect(error.code).toBe('internal');
    expect(typeof error.message).toBe('string');
    expect(error.message.length).toBeGreaterThan(0);
  });

  it('keeps a plain string rejection as the message of an internal error', () => {
    expect(toApiError('window closed')).toEqual({ code: 'internal', message: 'window closed' });
  });
});

describe('typed commands over the mock core', () => {
  it('sends the exact command names and argument keys the Rust side expects', async () => {
    const core = installMockCore();
    await appStatus();
    await getSettings();
    await saveSettings({ broker_url: 'https://pawd.example.com', ca_path: '/ca.pem' });
    await openExternal('https://example.com/paw/docs');
    expect(core.calls).toEqual([
      { cmd: 'app_status', args: {} },
      { cmd: 'get_settings', args: {} },
      { cmd: 'save_settings', args: { input: { broker_url: 'https://pawd.example.com', ca_path: '/ca.pem' } } },
      { cmd: 'open_external', args: { url: 'https://example.com/paw/docs' } },
    ]);
  });

  it('sends the exact names and argument keys of the sign-in, key and step-up commands', async () => {
    const core = installMockCore({ invites: { 'INV-1': 'ada' } });
    await enroll({ code: 'INV-1', key_name: 'Key A' });
    await logout();
    await login({ user: 'ada' });
    await listKeys();
    const [key] = core.keys;
    if (key === undefined) throw new Error('no key');
    await renameKey({ id: key.id, name: 'Key B' });
    const add = await prepareStepUp({ op: 'add', name: 'Key C' });
    const keys = await confirmStepUp(add.id);
    expect(keys.map((k) => k.name)).toEqual(['Key B', 'Key C']);
    const revoke = await prepareStepUp({ op: 'revoke', id: key.id });
    await cancelStepUp(revoke.id);
    expect(core.calls.map((c) => c)).toEqual([
      { cmd: 'enroll', args: { input: { code: 'INV-1', key_name: 'Key A' } } },
      { cmd: 'logout', args: {} },
      { cmd: 'login', args: { input: { user: 'ada' } } },
      { cmd: 'list_keys', args: {} },
      { cmd: 'rename_key', args: { input: { id: key.id, name: 'Key B' } } },
      { cmd: 'prepare_step_up', args: { action: { op: 'add', name: 'Key C' } } },
      { cmd: 'confirm_step_up', args: { id: add.id } },
      { cmd: 'prepare_step_up', args: { action: { op: 'revoke', id: key.id } } },
      { cmd: 'cancel_step_up', args: { id: revoke.id } },
    ]);
  });

  it('rejects key commands with unauthenticated when nobody is signed in', async () => {
    installMockCore();
    await expect(listKeys()).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(prepareStepUp({ op: 'add', name: 'x' })).rejects.toMatchObject({ code: 'unauthenticated' });
  });

  it('rejects with the ApiError the core sent', async () => {
    installMockCore();
    await expect(saveSettings({ broker_url: 'http://pawd.example.com', ca_path: '/ca.pem' })).rejects.toEqual({
      code: 'invalid_settings',
      message: 'broker URL must use https://',
    });
  });

  it('normalises a malformed rejection to internal', async () => {
    const core = installMockCore();
    core.statusFailure = new Error('something odd');
    await expect(appStatus()).rejects.toMatchObject({ code: 'internal' });
    core.statusFailure = { code: 'made_up', message: 'x' };
    await expect(appStatus()).rejects.toMatchObject({ code: 'internal' });
  });

  it('rejects with internal when there is no core at all', async () => {
    // No mock installed and no Tauri bridge: invoke throws a TypeError.
    await expect(appStatus()).rejects.toMatchObject({ code: 'internal' });
  });
});
