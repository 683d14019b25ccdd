import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MASK_PATTERNS } from '../lib/ipc/mock';
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

  it('saves other brokers one per line, in order, and shows them again', async () => {
    const { core, url, ca, save } = await openSettings();
    const others = screen.getByTestId<HTMLTextAreaElement>('settings-fallback-urls');
    await fill(url, 'https://pawd.example.com');
    await fireEvent.input(others, { target: { value: ' https://pawd-2.example.com \n\nhttps://pawd-3.example.com' } });
    await fill(ca, '/etc/paw/ca.pem');
    await fireEvent.click(save);
    await screen.findByTestId('settings-saved');
    expect(core.settings.fallback_urls).toEqual(['https://pawd-2.example.com', 'https://pawd-3.example.com']);
    expect(others.value).toBe('https://pawd-2.example.com\nhttps://pawd-3.example.com');
  });

  it('puts an invalid_settings error about another broker next to that list', async () => {
    const { core, url, ca, save } = await openSettings();
    const others = screen.getByTestId<HTMLTextAreaElement>('settings-fallback-urls');
    await fill(url, 'https://pawd.example.com');
    await fireEvent.input(others, { target: { value: 'http://pawd-2.example.com' } });
    await fill(ca, '/etc/paw/ca.pem');
    await fireEvent.click(save);
    const error = await screen.findByTestId('settings-error');
    expect(error.dataset['code']).toBe('invalid_settings');
    expect(error.id).toBe('fallback-urls-error');
    expect(others.getAttribute('aria-invalid')).toBe('true');
    expect(url.getAttribute('aria-invalid')).toBeNull();
    expect(core.settings.broker_url).toBe('');
  });

  it('shows in the status bar which broker is in use and that it is a fallback', async () => {
    const { core } = await openSettings({
      settings: { ...CONFIGURED, fallback_urls: ['https://pawd-2.example.com'] },
    });
    await waitFor(() => expect(screen.getByTestId('broker-url').textContent).toBe('https://pawd.example.com'));
    expect(screen.queryByTestId('broker-failed-over')).toBeNull();
    core.fallbackInUse = 0;
    await waitFor(() => expect(screen.getByTestId('broker-url').textContent).toBe('https://pawd-2.example.com'), {
      timeout: 7_000,
    });
    expect(screen.getByTestId('broker-failed-over').getAttribute('title')).toContain('kept you signed in');
    // The move shows at the next status poll (every 5 s).
  }, 10_000);

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

describe('settings: masked in replays', () => {
  const ADA = { name: 'ada', roles: ['engineer'] };

  function patternTexts(): string[] {
    return within(screen.getByTestId('settings-masks-patterns'))
      .getAllByRole('listitem')
      .map((li) => li.querySelector('code')?.textContent ?? '');
  }

  it('shows the broker’s default patterns as code, says they are the defaults, and the replacement', async () => {
    const { core } = await openSettings({ settings: CONFIGURED, user: ADA });
    await screen.findByTestId('settings-masks-patterns');
    expect(patternTexts()).toEqual([...DEFAULT_MASK_PATTERNS]);
    // Shown verbatim, backslashes and all.
    expect(patternTexts()).toContain(String.raw`\bAKIA[0-9A-Z]{16}\b`);
    const source = screen.getByTestId('settings-masks-source');
    expect(source.dataset['default']).toBe('true');
    expect(source.textContent).toContain('broker’s default patterns');
    expect(screen.getByTestId('settings-masks-replacement').textContent).toBe('••••');
    expect(screen.getByRole('heading', { name: 'Masked in replays' })).toBeTruthy();
    expect(screen.queryByTestId('settings-masks-empty')).toBeNull();
    // Read-only: nothing in the section takes input.
    const section = screen.getByTestId('settings-masks');
    expect(section.querySelectorAll('input, textarea, select, button')).toHaveLength(0);
    expect(core.calls.filter((c) => c.cmd === 'session_masks')).toHaveLength(1);
  });

  it('says when the patterns come from the broker’s configuration', async () => {
    await openSettings({
      settings: CONFIGURED,
      user: ADA,
      masks: { patterns: ['(?i)pin=\\d{4}'], default: false, replacement: '[hidden]' },
    });
    await screen.findByTestId('settings-masks-patterns');
    expect(patternTexts()).toEqual(['(?i)pin=\\d{4}']);
    const source = screen.getByTestId('settings-masks-source');
    expect(source.dataset['default']).toBe('false');
    expect(source.textContent).toContain('Set in the broker’s configuration');
    expect(source.textContent).not.toContain('default patterns');
    expect(screen.getByTestId('settings-masks-replacement').textContent).toBe('[hidden]');
  });

  it('says masking is off when the broker masks nothing', async () => {
    await openSettings({ settings: CONFIGURED, user: ADA, masks: { patterns: [], default: false, replacement: '••••' } });
    const empty = await screen.findByTestId('settings-masks-empty');
    expect(empty.textContent).toContain('Masking is off');
    expect(screen.queryByTestId('settings-masks-patterns')).toBeNull();
  });

  it('shows loading, then an error with its code and a keyboard-reachable retry, then the patterns', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: ADA, delayMs: 20 }, '#/settings');
    core.history.fail('session_masks', { code: 'broker_unreachable', message: 'connection refused' });
    expect(await screen.findByTestId('settings-masks-loading')).toBeTruthy();
    const error = await screen.findByTestId('settings-masks-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
    expect(error.getAttribute('role')).toBe('alert');
    expect(error.textContent).toContain('Could not read the mask patterns.');
    expect(error.textContent).toContain('connection refused');
    const retry = within(error).getByRole<HTMLButtonElement>('button', { name: 'Retry' });
    retry.focus();
    expect(document.activeElement).toBe(retry);
    await fireEvent.click(retry);
    await screen.findByTestId('settings-masks-patterns');
    expect(patternTexts()).toHaveLength(DEFAULT_MASK_PATTERNS.length);
    expect(screen.queryByTestId('settings-masks-error')).toBeNull();
  });

  it('asks nothing of the broker until the user signs in', async () => {
    const { core } = await openSettings({ settings: CONFIGURED });
    expect(screen.getByTestId('settings-masks-signed-out').textContent).toContain('Sign in');
    expect(core.calls.some((c) => c.cmd === 'session_masks')).toBe(false);
  });
});
