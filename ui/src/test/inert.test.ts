import { screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import { renderApp } from './helpers';

// G1 at the UI level: strings from the core (names, roles, targets, messages, certificate
// subjects) are text. Nothing in them may become markup or run.

const IMG = '<img src=x onerror="globalThis.__pawPwned = 1">';
const SCRIPT = '<script>globalThis.__pawPwned = 2</script>';
const SVG = '<svg onload="globalThis.__pawPwned = 3"></svg>';

declare global {
  var __pawPwned: number | undefined;
}

afterEach(() => {
  globalThis.__pawPwned = undefined;
});

function assertInert(root: HTMLElement): void {
  expect(root.querySelectorAll('img, script, iframe, object, embed')).toHaveLength(0);
  expect(root.querySelectorAll('svg[onload], [onerror], [onload]')).toHaveLength(0);
  expect(globalThis.__pawPwned).toBeUndefined();
}

describe('user-supplied text renders inert', () => {
  it('in the status bar (user, roles, grant target and role, broker URL and error)', async () => {
    const { container } = renderApp({
      settings: { broker_url: `https://x/${IMG}`, ca_path: '/ca.pem', ca: null },
      brokerState: 'untrusted',
      user: { name: IMG, roles: [SCRIPT] },
      grant: { id: 'g', target: SVG, role: SCRIPT, remaining_ms: 600_000 },
    });
    await waitFor(() => expect(screen.getByTestId('status-user').textContent).toContain(IMG));
    expect(screen.getByTestId('status-user').textContent).toContain(SCRIPT);
    expect(screen.getByTestId('status-grant').textContent).toContain(`${SVG} as ${SCRIPT}`);
    expect(screen.getByTestId('broker-state').textContent).toContain(IMG);
    assertInert(container);
  });

  it('in the settings page (loaded values, CA subject and error messages)', async () => {
    const { container, core } = renderApp(
      {
        settings: {
          broker_url: 'https://pawd.example.com',
          ca_path: SCRIPT,
          ca: { subject: `CN=${IMG}`, fingerprint_sha256: SVG, not_after: SCRIPT },
        },
      },
      '#/settings',
    );
    await waitFor(() => expect(screen.getByTestId('settings-ca-fingerprint').textContent).toBe(SVG));
    expect(screen.getByText(`CN=${IMG}`)).toBeTruthy();
    expect(screen.getByTestId<HTMLInputElement>('settings-ca-path').value).toBe(SCRIPT);

    core.saveFailure = { code: 'storage_unavailable', message: IMG };
    screen.getByTestId('settings-save').click();
    const error = await screen.findByTestId('settings-error');
    expect(error.textContent).toContain(IMG);
    assertInert(container);
  });
});
