import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MachineSpec } from '../lib/ipc';
import { mockMachine, type MockCore } from '../lib/ipc/mock';
import { CLIPBOARD_CLEAR_MS } from '../lib/util/clipboard';
import { filterMachines, formToSpec, EMPTY_MACHINE_FORM, parsePairs, sortMachines } from '../lib/util/machines';
import { type, choose } from './elevation-helpers';
import { CONFIGURED, renderApp, settle, useFakeClock } from './helpers';

const ADMIN = { name: 'ada', roles: ['admin'] };
const BOB = { name: 'bob', roles: ['engineer'] };

async function openMachines(user = ADMIN, extra: Parameters<typeof renderApp>[0] = {}): Promise<MockCore> {
  const { core } = renderApp({ settings: CONFIGURED, user, ...extra }, '#/machines');
  await screen.findByTestId('machines-page');
  return core;
}

function rows(): HTMLElement[] {
  return screen.queryAllByTestId('machine-row');
}

function rowNames(): string[] {
  return rows().map((r) => r.dataset['machine'] ?? '');
}

function row(name: string): HTMLElement {
  const r = rows().find((x) => x.dataset['machine'] === name);
  if (r === undefined) throw new Error(`no row ${name}: ${rowNames().join(', ')}`);
  return r;
}

function calls(core: MockCore, cmd: string): unknown[] {
  return core.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
}

async function approveStepUp(): Promise<HTMLElement> {
  const modal = await screen.findByTestId('stepup-modal');
  await fireEvent.click(within(modal).getByTestId('stepup-approve'));
  await waitFor(() => expect(screen.queryByTestId('stepup-modal')).toBeNull());
  return modal;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the machine inventory', () => {
  it('lists every machine for an administrator, suspended and flagged first, flags as words', async () => {
    await openMachines();
    expect(screen.getByTestId('machines-loading')).toBeTruthy();
    await waitFor(() => expect(rowNames()).toEqual(['backup-cron', 'ci-release', 'deploy-bot']));
    expect(screen.getByTestId('machines-heading').textContent).toContain('All machine identities');
    expect(screen.getByTestId('machines-counts').textContent).toContain('3 machines · 2 flagged · 1 suspended');

    const suspended = row('backup-cron');
    expect(suspended.dataset['suspended']).toBe('true');
    expect(within(suspended).getByTestId('machine-open').getAttribute('aria-label')).toBe('Suspended: backup-cron, details');
    expect(within(suspended).getByTestId('machine-owner').textContent).toContain('None');
    const badges = within(suspended).getAllByTestId('machine-flag');
    expect(badges.map((b) => b.textContent?.trim())).toEqual(['No owner', 'Suspended', 'Key not rotated']);
    expect(badges[0]?.getAttribute('title')).toContain('no accountable owner');

    const ci = row('ci-release');
    expect(ci.dataset['suspended']).toBe('false');
    expect(ci.textContent).toContain('OIDC token');
    expect(ci.textContent).toContain('from 198.51.100.23');
    expect(ci.textContent).toContain('Per session');
    expect(within(ci).getAllByTestId('machine-flag')[0]?.getAttribute('title')).toContain('broker audit record #4182');

    const deploy = row('deploy-bot');
    expect(deploy.textContent).toContain('12 days');
    expect(deploy.textContent).toContain('2 h ago');
    expect(deploy.textContent).toContain('backup group:sre');
    expect(within(deploy).queryAllByTestId('machine-flag')).toHaveLength(0);
    // Only a suspended machine offers "Assign owner" in its row.
    expect(within(suspended).getByTestId('machine-assign')).toBeTruthy();
    expect(within(deploy).queryByTestId('machine-assign')).toBeNull();
    expect(screen.getByTestId('machines-new')).toBeTruthy();
  });

  it('shows an owner only their own machines, under “Machines you own”, with nothing to create or assign', async () => {
    await openMachines(BOB);
    await waitFor(() => expect(rowNames()).toEqual(['deploy-bot']));
    expect(screen.getByTestId('machines-heading').textContent).toContain('Machines you own');
    expect(screen.getByTestId('machines-scope').textContent).toContain('own or back up');
    expect(screen.queryByTestId('machines-new')).toBeNull();
    await fireEvent.click(within(row('deploy-bot')).getByTestId('machine-open'));
    expect(await screen.findByTestId('machine-detail')).toBeTruthy();
    expect(screen.queryByTestId('machine-assign-form')).toBeNull();
  });

  it('says so when an owner has no machine, and when an administrator has none at all', async () => {
    await openMachines({ name: 'erin', roles: [] });
    const empty = await screen.findByTestId('machines-empty');
    expect(empty.textContent).toContain('You own no machine identities');
    expect(screen.queryByRole('table')).toBeNull();
  });

  it('has an empty state for an administrator with no machines', async () => {
    await openMachines(ADMIN, { machines: () => [] });
    expect((await screen.findByTestId('machines-empty')).textContent).toContain('No machine identities yet');
  });

  it('shows a load error with Retry, and keeps the last list with a stale note when a refresh fails', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: ADMIN }, '');
    core.machines.failNext('list_machines', { code: 'broker_unreachable', message: 'connection refused' });
    await fireEvent.click(await screen.findByTestId('nav-machines'));
    const error = await screen.findByTestId('machines-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
    expect(error.textContent).toContain('Could not load the machine identities.');
    await fireEvent.click(within(error).getByText('Retry'));
    await waitFor(() => expect(rows()).toHaveLength(3));
    core.machines.failNext('list_machines', { code: 'timeout', message: 'no answer' });
    await fireEvent.click(screen.getByTestId('machines-refresh'));
    expect(await screen.findByTestId('machines-stale')).toBeTruthy();
    expect(rows()).toHaveLength(3);
  });

  it('filters by flags and environment, and says when nothing matches', async () => {
    await openMachines();
    await waitFor(() => expect(rows()).toHaveLength(3));
    await choose('machines-filter-flags', 'flagged');
    expect(rowNames()).toEqual(['backup-cron', 'ci-release']);
    await choose('machines-filter-flags', 'suspended');
    expect(rowNames()).toEqual(['backup-cron']);
    await choose('machines-filter-env', 'staging');
    expect(rows()).toHaveLength(0);
    expect(screen.getByTestId('machines-empty').textContent).toContain('No machines match these filters');
    await fireEvent.click(screen.getByTestId('machines-filter-clear'));
    expect(rows()).toHaveLength(3);
  });
});

describe('a machine in detail', () => {
  it('shows keys with their age and retirement, sources, labels, and each flag with its record', async () => {
    await openMachines();
    await waitFor(() => expect(rows()).toHaveLength(3));
    const open = within(row('deploy-bot')).getByTestId('machine-open');
    await fireEvent.click(open);
    const detail = await screen.findByTestId('machine-detail');
    await waitFor(() => expect(document.activeElement?.id).toBe('machine-detail-heading'));
    expect(open.getAttribute('aria-expanded')).toBe('true');
    const keys = within(detail).getAllByTestId('machine-key');
    expect(keys.map((k) => k.dataset['state'])).toEqual(['active', 'retired']);
    expect(keys[0]?.textContent).toContain('12 days');
    expect(keys[1]?.textContent).toContain('103 days');
    expect(keys[1]?.textContent).toContain('Retired');
    expect(within(detail).getByTestId('machine-detail-sources').textContent).toContain('10.20.0.0/16');
    expect(within(detail).getByTestId('machine-detail-labels').textContent).toContain('team=payments');
    expect(within(detail).getByTestId('machine-detail-no-flags')).toBeTruthy();
    await fireEvent.click(within(detail).getByTestId('machine-detail-close'));
    expect(screen.queryByTestId('machine-detail')).toBeNull();
    expect(document.activeElement).toBe(open);

    await fireEvent.click(within(row('ci-release')).getByTestId('machine-open'));
    const ci = await screen.findByTestId('machine-detail');
    expect(within(ci).getByTestId('machine-detail-issuer').textContent).toBe('https://token.actions.githubusercontent.com');
    const claims = within(ci).getByTestId('machine-detail-claims').textContent ?? '';
    expect(claims).toContain('repository');
    expect(claims).toContain('acme/app');
    expect(claims).toContain('refs/heads/main');
    const flags = within(ci).getAllByTestId('machine-detail-flag');
    expect(flags.map((f) => f.dataset['code'])).toEqual(['new_source', 'standing_privilege']);
    expect(flags[0]?.textContent).toContain('logged in from a new source (198.51.100.23)');
    expect(flags[0]?.textContent).toContain('NHI9');
    expect(within(flags[0] as HTMLElement).getByTestId('machine-flag-record').textContent).toContain('broker audit record #4182');
    expect(flags[1]?.textContent).toContain('From the machine’s current state');
  });

  it('marks a suspended machine and lets an administrator assign an owner with a step-up', async () => {
    const core = await openMachines();
    await waitFor(() => expect(rows()).toHaveLength(3));
    await fireEvent.click(within(row('backup-cron')).getByTestId('machine-assign'));
    const detail = await screen.findByTestId('machine-detail');
    expect(within(detail).getByTestId('machine-suspended').textContent).toContain('owner dave disabled');
    const suspendedFlag = within(detail)
      .getAllByTestId('machine-detail-flag')
      .find((f) => f.dataset['code'] === 'suspended');
    expect(suspendedFlag?.textContent).toMatch(/suspended since \d{4}-\d\d-\d\d \d\d:\d\d: owner dave disabled/);
    expect(suspendedFlag?.textContent).not.toMatch(/\d{13}/);
    const owner = within(detail).getByTestId('machine-assign-owner');
    await waitFor(() => expect(document.activeElement).toBe(owner));

    // Someone who is not an active person is refused by the broker, in machine words.
    await fireEvent.input(owner, { target: { value: 'mallory' } });
    await fireEvent.click(within(detail).getByTestId('machine-assign-submit'));
    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-purpose').textContent).toBe('Machine identity');
    expect(within(modal).getByTestId('stepup-description').textContent).toContain('Make mallory the owner of machine backup-cron');
    await fireEvent.click(within(modal).getByTestId('stepup-approve'));
    const error = await within(modal).findByTestId('stepup-error');
    expect(error.textContent).toContain('The broker refused this because a rule is not met');
    expect(error.textContent).toContain('no active person named mallory');
    await fireEvent.click(within(modal).getByTestId('stepup-cancel'));

    await fireEvent.click(within(screen.getByTestId('machine-detail')).getByTestId('machine-take'));
    await approveStepUp();
    expect(calls(core, 'prepare_transfer_machine').at(-1)).toEqual({ input: { machine: 'backup-cron', owner: 'ada' } });
    await waitFor(() => expect(row('backup-cron').dataset['suspended']).toBe('false'));
    expect(screen.getByTestId('machines-notice').textContent).toContain('ada now answers for backup-cron; it is no longer suspended');
    expect(screen.getByTestId('machine-detail-owner').textContent).toContain('ada');
    expect(screen.queryByTestId('machine-suspended')).toBeNull();
  });

  it('lets the backup owner of a suspended machine take it over, and nobody else but an admin', async () => {
    const core = await openMachines(BOB);
    const cron = core.machines.machines.find((m) => m.name === 'backup-cron');
    if (cron === undefined) throw new Error('no backup-cron in the mock');
    cron.backup_owner = 'bob';
    await fireEvent.click(screen.getByTestId('machines-refresh'));
    await waitFor(() => expect(rowNames()).toContain('backup-cron'));
    await fireEvent.click(within(row('backup-cron')).getByTestId('machine-open'));
    const detail = await screen.findByTestId('machine-detail');
    expect(within(detail).getByTestId('machine-suspended').textContent).toContain('you, its backup owner, take it over');
    expect(within(detail).queryByTestId('machine-assign-form')).toBeNull();
    within(detail).getByTestId('machine-take-form');
    await fireEvent.click(within(detail).getByTestId('machine-take'));
    await approveStepUp();
    expect(calls(core, 'prepare_transfer_machine').at(-1)).toEqual({ input: { machine: 'backup-cron', owner: 'bob' } });
    await waitFor(() => expect(row('backup-cron').dataset['suspended']).toBe('false'));
    // A machine with its owner still there offers no take-over to its backup.
    expect(screen.queryByTestId('machine-take-form')).toBeNull();
  });

  it('shows when the owner was disabled: suspended, no owner', async () => {
    const core = await openMachines();
    await waitFor(() => expect(rows()).toHaveLength(3));
    core.machines.disableOwner('bob');
    await fireEvent.click(screen.getByTestId('machines-refresh'));
    await waitFor(() => expect(row('deploy-bot').dataset['suspended']).toBe('true'));
    expect(within(row('deploy-bot')).getAllByTestId('machine-flag')[0]?.dataset['code']).toBe('owner_missing');
    expect(rowNames().slice(0, 2).sort()).toEqual(['backup-cron', 'deploy-bot']);
  });
});

describe('creating a machine', () => {
  it('checks the form first, then creates a key machine and shows its join token once', async () => {
    vi.stubGlobal('navigator', { ...navigator, clipboard: { writeText: vi.fn(() => Promise.resolve()) } });
    const core = await openMachines();
    await waitFor(() => expect(rows()).toHaveLength(3));
    await fireEvent.click(screen.getByTestId('machines-new'));
    const form = await screen.findByTestId('machine-form');
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('machine-form-name')));

    await fireEvent.click(within(form).getByTestId('machine-form-submit'));
    expect(within(form).getByTestId('machine-form-name-error')).toBeTruthy();
    expect(within(form).getByTestId('machine-form-owner-error')).toBeTruthy();
    expect(within(form).getByTestId('machine-form-purpose-error')).toBeTruthy();
    expect(document.activeElement).toBe(screen.getByTestId('machine-form-name'));
    expect(calls(core, 'prepare_create_machine')).toHaveLength(0);

    await type('machine-form-name', 'deploy-web');
    await type('machine-form-owner', 'bob');
    await type('machine-form-backup', 'group:sre');
    await type('machine-form-purpose', 'Deploys the web tier');
    await type('machine-form-labels', 'team=web\ntier=2');
    await type('machine-form-sources', '10.20.0.0/16, 10.30.1.5');
    expect(within(form).queryByTestId('machine-form-name-error')).toBeNull();
    await fireEvent.click(within(form).getByTestId('machine-form-submit'));

    const modal = await screen.findByTestId('stepup-modal');
    expect(within(modal).getByTestId('stepup-description').textContent).toContain(
      'Create machine identity deploy-web owned by bob',
    );
    const spec = (calls(core, 'prepare_create_machine')[0] as { spec: MachineSpec }).spec;
    expect(spec).toEqual({
      name: 'deploy-web',
      owner: 'bob',
      backup_owner: 'group:sre',
      purpose: 'Deploys the web tier',
      environment: 'prod',
      expires_at_ms: null,
      labels: { team: 'web', tier: '2' },
      auth: { kind: 'key' },
      sources: ['10.20.0.0/16', '10.30.1.5'],
    });
    await approveStepUp();
    // The confirm call carries the same spec: the core checks it is the one the prompt described.
    expect((calls(core, 'confirm_create_machine')[0] as { input: { spec: MachineSpec } }).input.spec).toEqual(spec);

    const panel = await screen.findByTestId('join-token-panel');
    expect(screen.queryByTestId('machine-form')).toBeNull();
    expect(screen.getByTestId('machines-notice').textContent).toContain('Created deploy-web, owned by bob');
    await waitFor(() => expect(document.activeElement?.id).toBe('join-heading'));
    const value = within(panel).getByTestId('join-token-value');
    expect(value.textContent).not.toContain('pawjoin-');
    expect(value.getAttribute('aria-label')).toBe('Join token, hidden');
    expect(within(panel).getByTestId('join-token-countdown').textContent).toMatch(/^(1:00:00|59:5\d)$/);
    await fireEvent.click(within(panel).getByTestId('join-token-reveal'));
    const token = within(panel).getByTestId('join-token-value').textContent ?? '';
    expect(token).toMatch(/^pawjoin-/);
    await fireEvent.click(within(panel).getByTestId('join-token-copy'));
    await waitFor(() => expect(within(panel).getByTestId('join-token-copied').textContent).toContain('cleared in 30 s'));
    expect(navigator.clipboard.writeText).toHaveBeenCalledWith(token);
    // The token is nowhere else on the page, and nothing was stored.
    expect(document.body.textContent?.split(token).length).toBe(2);
    expect(window.localStorage.length).toBe(0);
    expect(window.sessionStorage.length).toBe(0);
    expect(row('deploy-web')).toBeTruthy();

    await fireEvent.click(within(panel).getByTestId('join-token-done'));
    expect(screen.queryByTestId('join-token-panel')).toBeNull();
    expect(document.body.textContent).not.toContain(token);
  });

  it('clears the clipboard after the copy, and drops the token from the screen when it expires', async () => {
    useFakeClock();
    const writes: string[] = [];
    vi.stubGlobal('navigator', {
      ...navigator,
      clipboard: {
        writeText: vi.fn((t: string) => {
          writes.push(t);
          return Promise.resolve();
        }),
      },
    });
    await openMachines(ADMIN, { joinTokenSecs: 120 });
    await settle();
    await fireEvent.click(screen.getByTestId('machines-new'));
    await type('machine-form-name', 'short-lived');
    await type('machine-form-owner', 'bob');
    await type('machine-form-purpose', 'Expires soon');
    await fireEvent.click(screen.getByTestId('machine-form-submit'));
    await settle();
    await fireEvent.click(screen.getByTestId('stepup-approve'));
    await settle();
    const panel = await screen.findByTestId('join-token-panel');
    await fireEvent.click(within(panel).getByTestId('join-token-copy'));
    await settle();
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/^pawjoin-/);
    await settle(CLIPBOARD_CLEAR_MS);
    expect(writes).toEqual([writes[0], '']);
    expect(within(panel).getByTestId('join-token-countdown').textContent).toBe('1:30');
    await settle(91_000);
    expect(within(panel).getByTestId('join-token-expired')).toBeTruthy();
    expect(within(panel).queryByTestId('join-token-value')).toBeNull();
    expect(within(panel).queryByTestId('join-token-copy')).toBeNull();
  });

  it('creates an OIDC machine (claim rules required) and shows no token for it', async () => {
    const core = await openMachines();
    await waitFor(() => expect(rows()).toHaveLength(3));
    await fireEvent.click(screen.getByTestId('machines-new'));
    await type('machine-form-name', 'ci-web');
    await type('machine-form-owner', 'carol');
    await type('machine-form-purpose', 'Web release pipeline');
    await type('machine-form-environment', 'staging');
    await fireEvent.click(screen.getByTestId('machine-form-auth-oidc'));
    await fireEvent.click(screen.getByTestId('machine-form-submit'));
    expect(screen.getByTestId('machine-form-claims-error').textContent).toContain('At least one rule');
    await type('machine-form-claims', 'repository=acme/web\nref=refs/heads/main');
    await fireEvent.click(screen.getByTestId('machine-form-submit'));
    await approveStepUp();
    const spec = (calls(core, 'prepare_create_machine')[0] as { spec: MachineSpec }).spec;
    expect(spec.auth).toEqual({
      kind: 'oidc',
      issuer: 'https://token.actions.githubusercontent.com',
      claims: { repository: 'acme/web', ref: 'refs/heads/main' },
    });
    await waitFor(() => expect(row('ci-web')).toBeTruthy());
    expect(screen.queryByTestId('join-token-panel')).toBeNull();
    expect(screen.getByTestId('machines-notice').textContent).toContain('Created ci-web, owned by carol');
    expect(core.machines.tokensIssued).toBe(0);
  });

  it('shows what the broker refused in machine words and keeps the form', async () => {
    await openMachines();
    await waitFor(() => expect(rows()).toHaveLength(3));
    await fireEvent.click(screen.getByTestId('machines-new'));
    await type('machine-form-name', 'deploy-bot');
    await type('machine-form-owner', 'bob');
    await type('machine-form-purpose', 'A second one');
    await fireEvent.click(screen.getByTestId('machine-form-submit'));
    const modal = await screen.findByTestId('stepup-modal');
    await fireEvent.click(within(modal).getByTestId('stepup-approve'));
    const error = await within(modal).findByTestId('stepup-error');
    expect(error.dataset['code']).toBe('conflict');
    expect(error.textContent).toContain('A user or machine with this name exists already.');
    expect((within(modal).getByTestId('stepup-approve') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(within(modal).getByTestId('stepup-cancel'));
    expect(screen.getByTestId('machine-form')).toBeTruthy();
    expect((screen.getByTestId('machine-form-name') as HTMLInputElement).value).toBe('deploy-bot');
  });

  it('shows a refusal before the key next to the form', async () => {
    const core = await openMachines();
    await waitFor(() => expect(rows()).toHaveLength(3));
    core.machines.failNext('prepare_create_machine', { code: 'forbidden', message: 'creating a machine identity is for administrators' });
    await fireEvent.click(screen.getByTestId('machines-new'));
    await type('machine-form-name', 'x1');
    await type('machine-form-owner', 'bob');
    await type('machine-form-purpose', 'p');
    await fireEvent.click(screen.getByTestId('machine-form-submit'));
    const error = await screen.findByTestId('machine-form-error');
    expect(error.textContent).toContain('Only administrators create machine identities');
    expect(screen.queryByTestId('stepup-modal')).toBeNull();
  });
});

describe('machine helpers', () => {
  it('reads name=value lines and names the bad one', () => {
    expect(parsePairs(' a = 1 \n\nb=x=y')).toEqual({ pairs: { a: '1', b: 'x=y' }, bad: null });
    expect(parsePairs('a=1\nnope').bad).toBe('nope');
    expect(parsePairs('=x').bad).toBe('=x');
  });

  it('turns the form into a spec, or says what is wrong field by field', () => {
    const { spec, problems } = formToSpec({ ...EMPTY_MACHINE_FORM, name: 'a', owner: 'b', purpose: 'p' });
    expect(problems).toEqual({});
    expect(spec?.backup_owner).toBeNull();
    const bad = formToSpec({
      ...EMPTY_MACHINE_FORM,
      name: 'a b',
      owner: 'b',
      backup_owner: 'b',
      purpose: 'p',
      sources: 'example.com',
      labels: 'x',
    }).problems;
    expect(Object.keys(bad).sort()).toEqual(['backup_owner', 'labels', 'name', 'sources']);
  });

  it('puts suspended, then flagged machines first, and filters by words', () => {
    const now = 1_000_000_000_000;
    const list = [
      mockMachine({ name: 'b-ok' }, now),
      mockMachine({ name: 'a-flag', flags: [{ code: 'unused', detail: 'd', audit_seq: null }] }, now),
      mockMachine({ name: 'z-susp', suspended_at_ms: now, owner: null }, now),
    ];
    expect(sortMachines(list).map((m) => m.name)).toEqual(['z-susp', 'a-flag', 'b-ok']);
    expect(filterMachines(list, { flags: '', environment: '', text: 'B-O' }).map((m) => m.name)).toEqual(['b-ok']);
  });
});
