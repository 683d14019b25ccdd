/**
 * Keystrokes reach the shell in the order they were typed. Each `terminal_input` is its own IPC
 * call, and the core runs calls concurrently: two keystrokes sent back to back may reach the
 * broker swapped ("whoam\ri"). The queue keeps one call in flight and sends what was typed
 * meanwhile as the next call, in order.
 */

import { LIMITS } from '../ipc';

/**
 * The core refuses an input longer than `LIMITS.terminal_input_max_bytes` in UTF-8. A chunk is
 * cut in UTF-16 code units, and one code unit is at most 3 UTF-8 bytes (a surrogate pair is two
 * units and 4 bytes), so a chunk of a third of that many units always fits.
 */
export const INPUT_CHUNK_CHARS = Math.floor(LIMITS.terminal_input_max_bytes / 3);

export interface InputQueue {
  push(data: string): void;
  /** Drops what has not been sent (the session ended). */
  clear(): void;
}

export function createInputQueue(
  send: (data: string) => Promise<void>,
  onResult: (error: unknown | null) => void,
): InputQueue {
  let pending = '';
  let inFlight = false;

  async function drain(): Promise<void> {
    inFlight = true;
    while (pending !== '') {
      // A chunk never splits a UTF-16 surrogate pair: an astral character stays whole.
      let end = Math.min(pending.length, INPUT_CHUNK_CHARS);
      const last = pending.charCodeAt(end - 1);
      if (end < pending.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
      const chunk = pending.slice(0, end);
      pending = pending.slice(end);
      try {
        await send(chunk);
        onResult(null);
      } catch (error) {
        onResult(error);
      }
    }
    inFlight = false;
  }

  return {
    push(data) {
      if (data === '') return;
      pending += data;
      if (!inFlight) void drain();
    },
    clear() {
      pending = '';
    },
  };
}
