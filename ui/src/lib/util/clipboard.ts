/**
 * Copying a secret the user must hand on (a machine's join token) to the system clipboard, and
 * clearing it again after `CLIPBOARD_CLEAR_MS`, so it does not linger for the next paste or a
 * clipboard manager's history longer than needed; and plain text that is no secret (a hash).
 *
 * The page cannot read the clipboard back (that needs a permission a webview asks for), so the
 * clearing overwrites whatever is there then; the page says so before the user copies.
 * The timer lives here, not in a component, so it still fires after the panel closed.
 */

export const CLIPBOARD_CLEAR_MS = 30_000;

let clearTimer: ReturnType<typeof setTimeout> | undefined;

async function write(text: string): Promise<void> {
  if (typeof navigator === 'undefined' || navigator.clipboard === undefined) {
    throw new Error('no clipboard in this window');
  }
  await navigator.clipboard.writeText(text);
}

/** Copies text that is no secret (a file's SHA-256): nothing is cleared afterwards. Resolves `false` when the clipboard refused. */
export async function copyText(text: string): Promise<boolean> {
  try {
    await write(text);
    return true;
  } catch {
    return false;
  }
}

/** Copies `secret`; resolves `true` when copied (clearing is then scheduled), `false` when the clipboard refused. */
export async function copySecret(secret: string, clearAfterMs = CLIPBOARD_CLEAR_MS): Promise<boolean> {
  try {
    await write(secret);
  } catch {
    return false;
  }
  clearTimeout(clearTimer);
  clearTimer = setTimeout(() => void clearClipboard(), clearAfterMs);
  return true;
}

/** Clears the clipboard now (best effort) and cancels a pending clear. */
export async function clearClipboard(): Promise<void> {
  clearTimeout(clearTimer);
  clearTimer = undefined;
  try {
    await write('');
  } catch {
    // Nothing more the page can do; the token also stops working once used or expired.
  }
}

/** Whether a clear is still scheduled (tests). */
export function clearPending(): boolean {
  return clearTimer !== undefined;
}
