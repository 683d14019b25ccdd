import { fireEvent, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { CONFIGURED, renderApp } from './helpers';

async function openSettings(options: Parameters<typeof renderApp>[0] = {}) {
  const app = renderApp(options, '#/settings');
  await screen.findByTestId('page-settings');
  const url = screen.getByTestId<HTMLInputElement>('settings-broker-url');
  const ca = screen.getByTestId<HTMLInputElement>('settings-ca-path');
  // Loaded from get_settings: the inputs become enabled.
  await waitFor(() => expect(url.disabled).toBe(false));
  return { ...app, url, ca, save: screen.getByTestId<HTMLButtonElement>('settings-save') };
}

async function fill(input: HTMLInputElement, value: string): Promise<void> {
  await fireEvent.input(input, { target: { value } });
}

describe('settings page', () => {
  it('loads the current settings into the form', async () => {
    const { url, ca } = await openSettings({ settings: CONFIGURED });
    expect(url.value).toBe('https://pawd.example.com');
    expect(ca.value).toBe('/etc/paw/ca.pem');
  });

  it('shows a field error with data-code="invalid_settings" for an http:// URL', async () => {
    const { core, url, ca, save } = await openSettings();
    await fill(url, 'http://pawd.example.com');
    await fill(ca, '/etc/paw/ca.pem');
    await fireEvent.click(save);

    const error = await screen.findByTestId('settings-error');
    expect(error.dataset['code']).toBe('invalid_settings');
    expect(error.textContent).toContain('https://');
    // Field-level: attached to the URL input, not a page banner.
    expect(error.id).toBe('broker-url-error');
    expect(url.getAttribute('aria-invalid')).toBe('true');
    expect(url.getAttribute('aria-describedby')).toBe('broker-url-error');
    expect(screen.queryByTestId('settings-saved')).toBeNull();
    expect(core.settings.broker_url).toBe(''); // nothing saved
  });

  it('saves a valid configuration, shows the pinned CA and refreshes the status', async () => {
    const { core, url, ca, save } = await openSettings();
    await waitFor(() => expect(screen.getByTestId('broker-state').dataset['state']).toBe('unconfigured'));
    const statusCalls = () => core.calls.filter((c) => c.cmd === 'app_status').length;
    const before = statusCalls();

    await fill(url, 'https://pawd.example.com');
    await fill(ca, '/etc/paw/ca.pem');
    await fireEvent.click(save);

    await screen.findByTestId('settings-saved');
    const fingerprint = screen.getByTestId('settings-ca-fingerprint');
    expect(fingerprint.textContent).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(fingerprint.textContent).toBe(core.settings.ca?.fingerprint_sha256);
    expect(screen.getByText('CN=paw Test Broker CA, O=Example Corp')).toBeTruthy();
    expect(screen.queryByTestId('settings-error')).toBeNull();

    // The status bar re-checks at once, without waiting for the 5 s poll.
    await waitFor(() => expect(statusCalls()).toBeGreaterThan(before));
    await waitFor(() => expect(screen.getByTestId('broker-state').dataset['state']).toBe('connected'));
  });

  it('shows the saving state while the core works', async () => {
    const { url, ca, save } = await openSettings({ delayMs: 50 });
    await fill(url, 'https://pawd.example.com');
    await fill(ca, '/etc/paw/ca.pem');
    await fireEvent.click(save);
    expect(save.disabled).toBe(true);
    expect(save.textContent).toContain('Saving');
    await screen.findByTestId('settings-saved');
    expect(save.disabled).toBe(false);
  });

  it('puts an invalid_settings error about the CA path next to that field', async () => {
    const { url, ca, save } = await openSettings();
    await fill(url, 'https://pawd.example.com');
    await fill(ca, '');
    await fireEvent.click(save);
    const error = await screen.findByTestId('settings-error');
    expect(error.dataset['code']).toBe('invalid_settings');
    expect(error.id).toBe('ca-path-error');
    expect(ca.getAttribute('aria-invalid')).toBe('true');
  });

  it('shows other error codes in a banner with the message', async () => {
    const { core, url, ca, save } = await openSettings();
    core.saveFailure = { code: 'storage_unavailable', message: 'settings file is read-only' };
    await fill(url, 'https://pawd.example.com');
    await fill(ca, '/etc/paw/ca.pem');
    await fireEvent.click(save);
    const error = await screen.findByTestId('settings-error');
    expect(error.dataset['code']).toBe('storage_unavailable');
    expect(error.getAttribute('role')).toBe('alert');
    expect(error.textContent).toContain('settings file is read-only');
    expect(url.getAttribute('aria-invalid')).toBeNull();
  });

  it('maps a malformed rejection to an internal error banner', async () => {
    const { core, url, ca, save } = await openSettings();
    core.saveFailure = 42;
    await fill(url, 'https://pawd.example.com');
    await fill(ca, '/etc/paw/ca.pem');
    await fireEvent.click(save);
    const error = await screen.findByTestId('settings-error');
    expect(error.dataset['code']).toBe('internal');
  });

  it('clears the saved mark once the form is edited again', async () => {
    const { url, ca, save } = await openSettings();
    await fill(url, 'https://pawd.example.com');
    await fill(ca, '/etc/paw/ca.pem');
    await fireEvent.click(save);
    await screen.findByTestId('settings-saved');
    await fill(url, 'https://other.example.com');
    expect(screen.queryByTestId('settings-saved')).toBeNull();
  });

  it('opens the docs through the core, never by navigating the window', async () => {
    const { core } = await openSettings();
    const link = screen.getByTestId('external-docs');
    expect(link.tagName).toBe('BUTTON');
    expect(link.hasAttribute('href')).toBe(false);
    const before = window.location.href;
    await fireEvent.click(link);
    await waitFor(() => expect(core.opened).toEqual(['https://example.com/paw/docs']));
    expect(window.location.href).toBe(before);
  });

  it('applies and remembers the theme', async () => {
    await openSettings();
    await fireEvent.click(screen.getByTestId('theme-dark'));
    expect(document.documentElement.dataset['theme']).toBe('dark');
    expect(window.localStorage.getItem('paw.theme')).toBe('dark');
    await fireEvent.click(screen.getByTestId('theme-light'));
    expect(document.documentElement.dataset['theme']).toBe('light');
  });
});
