const FOCUSABLE = 'button:not(:disabled), [href], input:not(:disabled)';

/** What Tab can reach inside a modal dialog, in document order (jsdom groups a selector list's matches). */
export function focusables(root: HTMLElement): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>('*')].filter((element) => element.matches(FOCUSABLE));
}

/** Keeps Tab and Shift+Tab inside `dialog` (call from its keydown handler). */
export function trapTab(dialog: HTMLElement | undefined, event: KeyboardEvent): void {
  if (dialog === undefined || event.key !== 'Tab') return;
  const items = focusables(dialog);
  const first = items[0];
  const last = items[items.length - 1];
  if (first === undefined || last === undefined) {
    event.preventDefault();
    dialog.focus();
    return;
  }
  const active = document.activeElement;
  if (event.shiftKey && (active === first || active === dialog)) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && active === last) {
    event.preventDefault();
    first.focus();
  }
}
