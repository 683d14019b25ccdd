import { describe, expect, it } from 'vitest';
import { LIMITS } from '../lib/ipc';
import { createInputQueue, INPUT_CHUNK_CHARS } from '../lib/terminal/input-queue';

/** A send whose calls finish only when the test says so, in any order it likes. */
function deferredSend() {
  const calls: { data: string; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const send = (data: string) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ data, resolve, reject });
    });
  return { calls, send };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('terminal input queue', () => {
  it('keeps one call in flight and sends the keys typed meanwhile next, in order', async () => {
    const { calls, send } = deferredSend();
    const results: unknown[] = [];
    const q = createInputQueue(send, (e) => results.push(e));
    for (const key of 'whoami\r') q.push(key);
    expect(calls.map((c) => c.data)).toEqual(['w']);
    calls[0]!.resolve();
    await tick();
    expect(calls.map((c) => c.data)).toEqual(['w', 'hoami\r']);
    calls[1]!.resolve();
    await tick();
    expect(calls.map((c) => c.data).join('')).toBe('whoami\r');
    expect(results).toEqual([null, null]);
  });

  it('reports a failed call and goes on with what follows', async () => {
    const { calls, send } = deferredSend();
    const results: unknown[] = [];
    const q = createInputQueue(send, (e) => results.push(e));
    q.push('a');
    q.push('b');
    calls[0]!.reject({ code: 'session_ended' });
    await tick();
    expect(results).toEqual([{ code: 'session_ended' }]);
    expect(calls.map((c) => c.data)).toEqual(['a', 'b']);
  });

  it('splits a large paste into bounded chunks without cutting a surrogate pair', async () => {
    const sent: string[] = [];
    const q = createInputQueue(async (d) => {
      sent.push(d);
    }, () => undefined);
    const paste = 'x'.repeat(INPUT_CHUNK_CHARS - 1) + '😀' + 'y'.repeat(10);
    q.push(paste);
    for (let i = 0; i < 5; i++) await tick();
    expect(sent.join('')).toBe(paste);
    expect(sent.every((c) => c.length <= INPUT_CHUNK_CHARS)).toBe(true);
    expect(sent[0]!.length).toBe(INPUT_CHUNK_CHARS - 1);
  });

  it('never sends a chunk the core refuses as too many UTF-8 bytes', async () => {
    const sent: string[] = [];
    const q = createInputQueue(async (d) => {
      sent.push(d);
    }, () => undefined);
    // The worst cases: 3 bytes per code unit (€), 4 bytes per surrogate pair (😀).
    q.push('€'.repeat(INPUT_CHUNK_CHARS * 2 + 7) + '😀'.repeat(INPUT_CHUNK_CHARS));
    for (let i = 0; i < 10; i++) await tick();
    const bytes = sent.map((c) => new TextEncoder().encode(c).length);
    expect(sent.length).toBeGreaterThan(3);
    expect(Math.max(...bytes)).toBeLessThanOrEqual(LIMITS.terminal_input_max_bytes);
  });

  it('drops unsent keys when cleared', async () => {
    const { calls, send } = deferredSend();
    const q = createInputQueue(send, () => undefined);
    q.push('a');
    q.push('b');
    q.clear();
    calls[0]!.resolve();
    await tick();
    expect(calls.map((c) => c.data)).toEqual(['a']);
  });
});
