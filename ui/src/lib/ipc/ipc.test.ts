import { afterEach, describe, expect, it } from 'vitest';
import {
  appStatus,
  approvalsInbox,
  cancelKeyPrompt,
  cancelRequest,
  cancelStepUp,
  closeReview,
  confirmElevation,
  confirmStepUp,
  enroll,
  ERROR_CODES,
  getSettings,
  keyPrompt,
  listEntitlements,
  listGrants,
  listKeys,
  listOversight,
  liveEvents,
  login,
  logout,
  onKeyOperation,
  openExternal,
  prepareElevation,
  prepareStepUp,
  releaseGrant,
  renameKey,
  revokeGrant,
  saveSettings,
  submitPin,
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
    await saveSettings({ broker_url: 'https://pawd.example.com', fallback_urls: [], ca_path: '/ca.pem' });
    await openExternal('https://example.com/paw/docs');
    expect(core.calls).toEqual([
      { cmd: 'app_status', args: {} },
      { cmd: 'get_settings', args: {} },
      { cmd: 'save_settings', args: { input: { broker_url: 'https://pawd.example.com', fallback_urls: [], ca_path: '/ca.pem' } } },
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

  it('sends the exact names and argument keys of the key prompt commands', async () => {
    const core = installMockCore({ pin: '1234' });
    const signIn = login({ user: 'ada' });
    expect(await keyPrompt()).toEqual({ kind: 'pin', retries: 8, wrong: false });
    await submitPin('1234');
    await signIn;
    expect(await keyPrompt()).toEqual({ kind: 'idle' });
    await cancelKeyPrompt(); // nothing asked: a no-op, like the core
    expect(core.calls).toEqual([
      { cmd: 'login', args: { input: { user: 'ada' } } },
      { cmd: 'key_prompt', args: {} },
      { cmd: 'submit_pin', args: { input: { pin: '1234' } } },
      { cmd: 'key_prompt', args: {} },
      { cmd: 'cancel_key_prompt', args: {} },
    ]);
  });

  it('refuses a PIN nobody asked for, or of the wrong length, with bad_request', async () => {
    installMockCore({ pin: '1234' });
    await expect(submitPin('1234')).rejects.toMatchObject({ code: 'bad_request' });
    const signIn = login({ user: 'ada' });
    await expect(submitPin('123')).rejects.toMatchObject({ code: 'bad_request' });
    await expect(submitPin('ü'.repeat(32))).rejects.toMatchObject({ code: 'bad_request' }); // 64 bytes
    await cancelKeyPrompt();
    await expect(signIn).rejects.toMatchObject({ code: 'key_cancelled' });
  });

  it('announces key operations: true when the first starts, false when the last ends', async () => {
    installMockCore({ pin: '1234' });
    const seen: boolean[] = [];
    const unsubscribe = onKeyOperation((running) => seen.push(running));
    expect(seen).toEqual([]);
    await listKeys().catch(() => undefined); // not a key operation
    expect(seen).toEqual([]);
    const first = login({ user: 'ada' });
    expect(seen).toEqual([true]);
    const second = enroll({ code: 'PAW-INVITE-1', key_name: 'Key' }); // takes over the prompt
    const late: boolean[] = [];
    const unsubscribeLate = onKeyOperation((running) => late.push(running));
    expect(late).toEqual([true]); // told at once that one is running
    await expect(first).rejects.toMatchObject({ code: 'key_cancelled' });
    expect(seen).toEqual([true]);
    await cancelKeyPrompt();
    await expect(second).rejects.toMatchObject({ code: 'key_cancelled' });
    expect(seen).toEqual([true, false]);
    expect(late).toEqual([true, false]);
    unsubscribe();
    unsubscribeLate();
    const third = login({ user: 'ada' });
    await cancelKeyPrompt();
    await expect(third).rejects.toMatchObject({ code: 'key_cancelled' });
    expect(seen).toEqual([true, false]);
  });

  it('a listener that throws does not change the outcome of the operation', async () => {
    installMockCore();
    const unsubscribe = onKeyOperation(() => {
      throw new Error('listener bug');
    });
    await expect(login({ user: 'ada' })).resolves.toMatchObject({ name: 'ada' });
    unsubscribe();
  });

  it('sends the exact names and argument keys of the elevation commands', async () => {
    const core = installMockCore({ user: { name: 'ada', roles: ['admin'] }, grants: () => [] });
    const { entitlements } = await listEntitlements();
    expect(entitlements.map((e) => e.id)).toEqual(['web-deploy', 'db-prod-dba', 'app-prod-root']);
    expect(entitlements[0]).not.toHaveProperty('approvals_required'); // the mock's own bookkeeping stays inside
    const request = {
      op: 'request',
      entitlement: 'web-deploy',
      target: 'web-1',
      role: 'deploy',
      duration_secs: 600,
      justification: 'restart the worker',
      ticket: null,
      start_at_ms: null,
    } as const;
    const prompt = await prepareElevation(request);
    expect(prompt.purpose).toBe('request');
    const active = await confirmElevation(prompt.id);
    expect(active.state).toBe('active');
    const list = await listGrants();
    expect(list.grants.map((g) => g.id)).toEqual([active.id]);
    expect(typeof list.now_ms).toBe('number');
    const released = await releaseGrant(active.id);
    expect(released.state).toBe('released');
    const pending = await confirmElevation(
      (await prepareElevation({ ...request, entitlement: 'app-prod-root', target: 'app-prod-1', role: 'root' })).id,
    );
    expect(pending.state).toBe('pending');
    await cancelRequest(pending.id);
    const other = core.elevation.requestAs('bob', { entitlement: 'app-prod-root', target: 'app-prod-2', role: 'root' });
    const inbox = await approvalsInbox();
    expect(inbox.requests.map((i) => i.request.id)).toEqual([other.id]);
    const overseen = await listOversight();
    expect(overseen.grants).toEqual([]); // bob's request is pending; the rest are ada's own
    expect(typeof overseen.now_ms).toBe('number');
    const decide = await prepareElevation({ op: 'decide', request_id: other.id, approve: true, comment: '' });
    expect(decide.purpose).toBe('approve');
    await cancelStepUp(decide.id);
    const glass = await prepareElevation({
      op: 'break_glass',
      entitlement: 'db-prod-dba',
      target: 'db-prod-1',
      role: 'dba',
      duration_secs: 600,
      justification: 'disk full on primary',
    });
    expect(glass.purpose).toBe('break_glass');
    const bg = await confirmElevation(glass.id);
    await revokeGrant({ id: bg.id, reason: 'done' });
    const review = core.elevation.requestAs('carol', { break_glass: true, state: 'released' });
    await closeReview({ id: review.id, comment: 'justified' });
    const feed = await liveEvents(0);
    expect(feed.connected).toBe(true);
    expect(feed.seq).toBe(feed.events.length);
    const sent = core.calls.map((c) => [c.cmd, c.args]);
    expect(sent).toEqual([
      ['list_entitlements', {}],
      ['prepare_elevation', { action: request }],
      ['confirm_elevation', { id: prompt.id }],
      ['list_grants', {}],
      ['release_grant', { id: active.id }],
      ['prepare_elevation', { action: { ...request, entitlement: 'app-prod-root', target: 'app-prod-1', role: 'root' } }],
      ['confirm_elevation', { id: expect.any(String) }],
      ['cancel_request', { id: pending.id }],
      ['approvals_inbox', {}],
      ['list_oversight', {}],
      ['prepare_elevation', { action: { op: 'decide', request_id: other.id, approve: true, comment: '' } }],
      ['cancel_step_up', { id: decide.id }],
      ['prepare_elevation', { action: expect.objectContaining({ op: 'break_glass' }) }],
      ['confirm_elevation', { id: glass.id }],
      ['revoke_grant', { input: { id: bg.id, reason: 'done' } }],
      ['close_review', { input: { id: review.id, comment: 'justified' } }],
      ['live_events', { since: 0 }],
    ]);
  });

  it('counts confirmElevation as a key operation', async () => {
    installMockCore({ user: { name: 'ada', roles: [] }, pin: '1234' });
    const prompt = await prepareElevation({
      op: 'request',
      entitlement: 'web-deploy',
      target: 'web-1',
      role: 'deploy',
      duration_secs: 600,
      justification: 'restart the worker',
      ticket: null,
      start_at_ms: null,
    });
    const seen: boolean[] = [];
    const unsubscribe = onKeyOperation((running) => seen.push(running));
    const confirming = confirmElevation(prompt.id);
    expect(seen).toEqual([true]);
    expect(await keyPrompt()).toEqual({ kind: 'pin', retries: 8, wrong: false });
    await submitPin('1234');
    await expect(confirming).resolves.toMatchObject({ state: 'active' });
    expect(seen).toEqual([true, false]);
    unsubscribe();
  });

  it('rejects elevation commands with unauthenticated when nobody is signed in', async () => {
    installMockCore();
    await expect(listGrants()).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(approvalsInbox()).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(listOversight()).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(liveEvents(0)).rejects.toMatchObject({ code: 'unauthenticated' });
  });

  it('rejects key commands with unauthenticated when nobody is signed in', async () => {
    installMockCore();
    await expect(listKeys()).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(prepareStepUp({ op: 'add', name: 'x' })).rejects.toMatchObject({ code: 'unauthenticated' });
  });

  it('rejects with the ApiError the core sent', async () => {
    installMockCore();
    await expect(saveSettings({ broker_url: 'http://pawd.example.com', fallback_urls: [], ca_path: '/ca.pem' })).rejects.toEqual({
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
