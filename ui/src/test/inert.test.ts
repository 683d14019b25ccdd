import { screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import { mockGrant } from '../lib/ipc/mock';
import { CONFIGURED, renderApp } from './helpers';

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
      settings: { broker_url: `https://x/${IMG}`, fallback_urls: [], ca_path: '/ca.pem', ca: null },
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
          fallback_urls: [],
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

describe('elevation text renders inert', () => {
  const hostile = (now: number) => [
    mockGrant({
      id: 'gr-mine',
      user: 'ada',
      target: SVG,
      role: SCRIPT,
      justification: IMG,
      ticket: SCRIPT,
      state: 'active',
      break_glass: true,
      starts_at_ms: now,
      ends_at_ms: now + 600_000,
      rule: IMG,
      decisions: [{ approver: IMG, approve: true, comment: SCRIPT, at_ms: now }],
    }),
    mockGrant({
      id: 'gr-theirs',
      user: IMG,
      target: SVG,
      role: SCRIPT,
      justification: IMG,
      ticket: SVG,
      state: 'pending',
      created_at_ms: now,
      rule: SCRIPT,
      decisions: [{ approver: SVG, approve: true, comment: IMG, at_ms: now }],
    }),
    mockGrant({ id: 'gr-review', user: SVG, target: IMG, role: SCRIPT, justification: SVG, break_glass: true, state: 'released', reviewers: [IMG] }),
  ];

  it('on the access page, in the break-glass banner and in toasts', async () => {
    const { container, core } = renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: [] }, grants: hostile }, '#/access');
    await waitFor(() => expect(screen.getAllByTestId('grant-row').length).toBeGreaterThan(0));
    expect(screen.getByTestId('break-glass-banner').textContent).toContain(`${SCRIPT} on ${SVG}`);
    expect(screen.getAllByTestId('grant-row')[0]?.textContent).toContain(IMG);
    await waitFor(() => expect(core.calls.some((c) => c.cmd === 'live_events')).toBe(true));
    core.elevation.emit('break_glass', core.elevation.grant('gr-mine'), IMG);
    await waitFor(() => expect(screen.getByTestId('live-toast').textContent).toContain(IMG), { timeout: 3000 });
    assertInert(container);
  });

  it('on the approvals page', async () => {
    const { container } = renderApp({ settings: CONFIGURED, user: { name: 'ada', roles: [] }, grants: hostile }, '#/approvals');
    const item = await screen.findByTestId('inbox-item');
    expect(item.textContent).toContain(IMG);
    expect(screen.getByTestId('inbox-rule').textContent).toBe(SCRIPT);
    expect(screen.getByTestId('review-item').textContent).toContain(SVG);
    assertInert(container);
  });
});
