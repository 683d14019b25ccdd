import { afterEach, describe, expect, it } from 'vitest';
import { login, type SessionUser } from '../lib/ipc';
import { installMockCore, type MockCore } from '../lib/ipc/mock';
import { KeyPromptStore, PROMPT_POLL_MS } from '../lib/stores/keyprompt.svelte';
import { settle, useFakeClock } from './helpers';

let store: KeyPromptStore | null = null;

afterEach(() => {
  store?.stop();
  store = null;
});

function setup(options: Parameters<typeof installMockCore>[0] = {}): { core: MockCore; store: KeyPromptStore } {
  useFakeClock();
  const core = installMockCore({ pin: '1234', ...options });
  store = new KeyPromptStore();
  store.start();
  return { core, store };
}

function polls(core: MockCore): number {
  return core.calls.filter((c) => c.cmd === 'key_prompt').length;
}

/** Starts a sign-in whose failure the test inspects later (never an unhandled rejection). */
function signIn(): Promise<SessionUser | { failed: unknown }> {
  return login({ user: 'ada' }).catch((failed: unknown) => ({ failed }));
}

describe('KeyPromptStore', () => {
  it('polls only while a key operation runs, at once and then every 200 ms', async () => {
    const { core, store } = setup();
    await settle(1_000);
    expect(polls(core)).toBe(0);
    expect(store.view).toEqual({ kind: 'idle' });

    const result = signIn();
    await settle();
    expect(polls(core)).toBe(1);
    expect(store.view).toEqual({ kind: 'pin', retries: 8, wrong: false });
    await settle(PROMPT_POLL_MS * 3);
    expect(polls(core)).toBe(4);

    expect(await store.submit('1234')).toBe(true);
    expect(store.view).toEqual({ kind: 'idle' });
    expect(await result).toMatchObject({ name: 'ada' });
    const after = polls(core);
    await settle(PROMPT_POLL_MS * 5);
    expect(polls(core)).toBe(after);
    expect(store.view).toEqual({ kind: 'idle' });
  });

  it('shows the PIN asked again after a wrong one', async () => {
    const { store } = setup();
    const result = signIn();
    await settle();
    expect(await store.submit('9999')).toBe(true);
    expect(store.view.kind).toBe('idle');
    await settle(PROMPT_POLL_MS);
    expect(store.view).toEqual({ kind: 'pin', retries: 7, wrong: true });
    await store.cancel();
    expect(await result).toEqual({ failed: { code: 'key_cancelled', message: 'the PIN prompt was cancelled' } });
  });

  it('keeps the last view when a poll fails, and never throws from its timer', async () => {
    const { core, store } = setup();
    const result = signIn();
    await settle();
    expect(store.view.kind).toBe('pin');
    core.promptFailure = { code: 'internal', message: 'poll failed' };
    const before = polls(core);
    await settle(PROMPT_POLL_MS * 3);
    expect(polls(core)).toBe(before + 3); // still polling
    expect(store.view.kind).toBe('pin');
    expect(store.error).toBeNull();
    core.promptFailure = undefined;
    await store.cancel();
    await result;
  });

  it('keeps a refused PIN error until the next answer, and is not busy after', async () => {
    const { core, store } = setup();
    const result = signIn();
    await settle();
    const submitting = store.submit('ü'.repeat(40));
    expect(store.busy).toBe(true);
    expect(await submitting).toBe(false);
    expect(store.busy).toBe(false);
    expect(store.error?.code).toBe('bad_request');
    expect(store.view.kind).toBe('pin');
    expect(await store.submit('1234')).toBe(true);
    expect(store.error).toBeNull();
    expect(await result).toMatchObject({ name: 'ada' });
    expect(core.calls.filter((c) => c.cmd === 'submit_pin')).toHaveLength(2);
  });

  it('submits and cancels nothing while no PIN is asked for', async () => {
    const { core, store } = setup();
    expect(await store.submit('1234')).toBe(false);
    await store.cancel();
    expect(core.calls).toEqual([]);
  });

  it('resets to idle when the operation ends, and stops following after stop()', async () => {
    const { core, store } = setup();
    const result = signIn();
    await settle();
    expect(store.view.kind).toBe('pin');
    store.stop();
    expect(store.view).toEqual({ kind: 'idle' });
    const before = polls(core);
    await settle(PROMPT_POLL_MS * 3);
    expect(polls(core)).toBe(before);
    core.pin = null;
    await expect(login({ user: 'ada' })).resolves.toMatchObject({ name: 'ada' }); // no PIN: no prompt
    await settle(PROMPT_POLL_MS);
    expect(polls(core)).toBe(before);
    void result;
  });
});
