import { fireEvent, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { AREAS } from '../lib/areas';
import { CONFIGURED, renderApp } from './helpers';

function current(): string[] {
  return screen
    .getAllByRole('button')
    .filter((b) => b.getAttribute('aria-current') === 'page')
    .map((b) => b.dataset['testid'] ?? '');
}

describe('navigation', () => {
  it('has one focusable nav button per area, in order, with Access active by default', () => {
    renderApp();
    const ids = AREAS.map((a) => a.id);
    expect(ids).toEqual(['access', 'approvals', 'sessions', 'vault', 'audit', 'history', 'machines', 'keys', 'settings']);
    for (const id of ids) {
      const item = screen.getByTestId(`nav-${id}`);
      expect(item.tagName).toBe('BUTTON');
      expect(item.tabIndex).toBe(0);
    }
    expect(screen.getByTestId('page-access')).toBeTruthy();
    expect(current()).toEqual(['nav-access']);
  });

  it('changes the page when a nav item is clicked', async () => {
    renderApp();
    for (const { id } of AREAS) {
      await fireEvent.click(screen.getByTestId(`nav-${id}`));
      expect(screen.getByTestId(`page-${id}`)).toBeTruthy();
      expect(screen.getAllByTestId(/^page-/)).toHaveLength(1);
      expect(current()).toEqual([`nav-${id}`]);
      expect(window.location.hash).toBe(`#/${id}`);
    }
  });

  it('jumps to areas with Alt+1…Alt+9 and focuses the page title', async () => {
    renderApp();
    for (const [index, { id }] of AREAS.entries()) {
      const n = index + 1;
      await fireEvent.keyDown(window, { key: String(n), code: `Digit${n}`, altKey: true });
      expect(screen.getByTestId(`page-${id}`)).toBeTruthy();
      expect(screen.getByTestId(`nav-${id}`).getAttribute('aria-current')).toBe('page');
      await waitFor(() => expect(document.activeElement?.id).toBe('page-title'));
    }
  });

  it('uses the physical key, so Option+digit layouts work', async () => {
    renderApp();
    await fireEvent.keyDown(window, { key: 'ª', code: 'Digit9', altKey: true });
    expect(screen.getByTestId('page-settings')).toBeTruthy();
  });

  it('ignores digits without Alt, and Alt with other modifiers', async () => {
    renderApp();
    await fireEvent.keyDown(window, { key: '3', code: 'Digit3' });
    await fireEvent.keyDown(window, { key: '3', code: 'Digit3', altKey: true, ctrlKey: true });
    await fireEvent.keyDown(window, { key: '0', code: 'Digit0', altKey: true });
    expect(screen.getByTestId('page-access')).toBeTruthy();
  });

  it('starts on the area named in the hash and follows hash changes', async () => {
    renderApp({}, '#/audit');
    expect(screen.getByTestId('page-audit')).toBeTruthy();
    window.location.hash = '#/keys';
    await waitFor(() => expect(screen.getByTestId('page-keys')).toBeTruthy());
    window.location.hash = '#/nonsense';
    await new Promise((r) => setTimeout(r, 10));
    expect(screen.getByTestId('page-keys')).toBeTruthy();
  });

  it('has a skip link that moves focus to the main content', async () => {
    renderApp();
    await fireEvent.click(screen.getByTestId('skip-link'));
    expect(document.activeElement?.id).toBe('main');
    expect(screen.getByTestId('page-access')).toBeTruthy();
  });

  it('points to Settings from an area when no broker is configured', async () => {
    renderApp();
    const button = await screen.findByTestId('goto-settings');
    await fireEvent.click(button);
    expect(screen.getByTestId('page-settings')).toBeTruthy();
    expect(screen.getByTestId('nav-settings').getAttribute('aria-current')).toBe('page');
  });

  it('does not offer the Settings shortcut once the broker is connected', async () => {
    renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: [] } }, '#/history');
    await waitFor(() => expect(screen.getByTestId('broker-state').dataset['state']).toBe('connected'));
    expect(await screen.findByTestId('history-page')).toBeTruthy();
    expect(screen.queryByTestId('goto-settings')).toBeNull();
  });

  it('has no upcoming area left once signed in: every area is a working page', async () => {
    renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: [] } });
    await screen.findByTestId('account');
    for (const { id } of AREAS) {
      await fireEvent.click(screen.getByTestId(`nav-${id}`));
      expect(screen.getByTestId(`page-${id}`)).toBeTruthy();
      expect(screen.queryByTestId('requirement-signin')).toBeNull();
    }
  });

  it('shows the sign-in requirement as not met while signed out', async () => {
    renderApp();
    const check = await screen.findByTestId('requirement-signin');
    expect(check.dataset['check']).toBe('unavailable');
  });

  it('shows honest empty states: no tables, no inputs outside Settings', async () => {
    renderApp();
    // The audit page reads the workstation's own trail, which needs no broker.
    for (const { id } of AREAS.filter((a) => a.id !== 'settings' && a.id !== 'audit')) {
      await fireEvent.click(screen.getByTestId(`nav-${id}`));
      const page = screen.getByTestId(`page-${id}`);
      expect(page.querySelectorAll('input, select, textarea, table')).toHaveLength(0);
      expect(page.textContent).toContain('Coming in a later release');
    }
  });
});
