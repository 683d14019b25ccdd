import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { MockCore } from '../lib/ipc/mock';
import { activeGrant, MIN, renderSignedIn } from './elevation-helpers';

/**
 * File transfer from the Sessions page, against the mock core (mock-files.ts): a file
 * connection opened with a session step-up, uploads in chunks with progress and the SHA-256 of
 * the bytes, downloads saved where the core says, cancel, and the broker's refusals.
 */
const SSH = (now: number) => activeGrant(now, 30 * MIN);
const DB = (now: number) =>
  activeGrant(now, 45 * MIN, { id: 'gr-ada-2', entitlement: 'db-prod-dba', target_kind: 'postgres', target: 'db-prod-1', role: 'dba' });

async function openFilesPanel(): Promise<{ core: MockCore; panel: HTMLElement }> {
  const { core } = renderSignedIn('#/sessions', { grants: (now) => [SSH(now), DB(now)] });
  await screen.findByTestId('sessions-page');
  const buttons = await screen.findAllByTestId('session-open-files');
  // Only the SSH grant moves files.
  expect(buttons.map((b) => b.dataset['grantId'])).toEqual(['gr-ada-1']);
  await fireEvent.click(buttons[0] as HTMLElement);
  await fireEvent.click(await screen.findByTestId('stepup-approve'));
  const panel = await screen.findByTestId('files-panel');
  return { core, panel };
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function pick(panel: HTMLElement, file: File): Promise<boolean> {
  const input = within(panel).getByTestId<HTMLInputElement>('files-upload-input');
  Object.defineProperty(input, 'files', { value: [file], configurable: true });
  return fireEvent.change(input);
}

describe('files panel', () => {
  it('opens with a session step-up and lists the remote home folder', async () => {
    const { core, panel } = await openFilesPanel();
    expect(panel.textContent).toContain('deploy@web-1');
    // The keyboard goes to the new panel.
    await waitFor(() => expect(document.activeElement?.id).toBe(`files-heading-${panel.dataset['sessionId'] ?? ''}`));
    expect(core.calls.some((c) => c.cmd === 'prepare_session')).toBe(true);
    expect(within(panel).getByTestId<HTMLInputElement>('files-dir').value).toBe('/root');
    expect(within(panel).getByTestId('files-list-hint')).toBeTruthy();
    await fireEvent.click(within(panel).getByTestId('files-list'));
    const entries = await within(panel).findAllByTestId('files-entry');
    expect(entries.map((e) => e.textContent)).toEqual([expect.stringContaining('notes.txt')]);
    // Up goes to the parent, directories first.
    await fireEvent.click(within(panel).getByTestId('files-up'));
    await waitFor(() => expect(within(panel).getByTestId<HTMLInputElement>('files-dir').value).toBe('/'));
    const kinds = (await within(panel).findAllByTestId('files-entry')).map((e) => e.dataset['kind']);
    expect(kinds.every((k) => k === 'dir')).toBe(true);
  });

  it('uploads a file in order, in chunks, shows progress events and the SHA-256 of its bytes', async () => {
    const { core, panel } = await openFilesPanel();
    const bytes = new TextEncoder().encode('0123456789abcdef!');
    await pick(panel, new File([bytes], 'deploy.sh'));
    // The destination is the folder shown plus the file's name, editable.
    const path = within(panel).getByTestId<HTMLInputElement>('files-upload-path');
    expect(path.value).toBe('/root/deploy.sh');
    await fireEvent.input(path, { target: { value: '/tmp/deploy.sh' } });
    await fireEvent.click(within(panel).getByTestId('files-upload-start'));
    const sha = await within(panel).findByTestId('transfer-sha256');
    expect(sha.textContent).toBe(await sha256Hex(bytes));
    expect(Array.from(core.files.remote.get('/tmp/deploy.sh') ?? [])).toEqual(Array.from(bytes));
    const chunks = core.calls.filter((c) => c.cmd === 'upload_chunk').map((c) => (c.args as { input: { offset: number } }).input.offset);
    expect(chunks).toEqual([0, 4, 8, 12, 16]);
    const row = within(panel).getByTestId('transfer');
    expect(row.dataset['phase']).toBe('done');
    expect(row.dataset['done']).toBe(String(bytes.length));
    expect(within(row).getByTestId('transfer-size').textContent).toContain('17 bytes');
  });

  it('shows the broker holding the close, then the result once it lets go', async () => {
    const { core, panel } = await openFilesPanel();
    core.files.holdCloses = true;
    await pick(panel, new File(['held'], 'held.txt'));
    await fireEvent.click(within(panel).getByTestId('files-upload-start'));
    await waitFor(() => expect(within(panel).getByTestId('transfer').dataset['phase']).toBe('closing'));
    expect(within(panel).getByTestId('transfer-phase').textContent).toContain('Held commands');
    expect(within(panel).getByTestId<HTMLProgressElement>('transfer-progress').value).toBe(4);
    // The broker's words about the hold, from the channel's stderr.
    expect((await within(panel).findByTestId('files-notice')).textContent).toContain(
      'waits: confirm it with your security key',
    );
    core.files.releaseCloses();
    await within(panel).findByTestId('transfer-sha256');
    await waitFor(() => expect(within(panel).queryByTestId('files-notice')).toBeNull());
  });

  it('cancels a held upload and says the remote file may be partial', async () => {
    const { core, panel } = await openFilesPanel();
    core.files.holdCloses = true;
    await pick(panel, new File(['partial'], 'p.txt'));
    await fireEvent.click(within(panel).getByTestId('files-upload-start'));
    await waitFor(() => expect(within(panel).getByTestId('transfer').dataset['phase']).toBe('closing'));
    await fireEvent.click(within(panel).getByTestId('transfer-cancel'));
    const note = await within(panel).findByTestId('transfer-cancelled');
    await waitFor(() => expect(note.textContent).toContain('may be left partial'));
    expect(core.calls.some((c) => c.cmd === 'cancel_transfer')).toBe(true);
    expect(within(panel).queryByTestId('transfer-sha256')).toBeNull();
  });

  it('shows a refusal by the broker in its own words', async () => {
    const { panel } = await openFilesPanel();
    await pick(panel, new File(['x'], 'shadow'));
    await fireEvent.input(within(panel).getByTestId('files-upload-path'), { target: { value: '/etc/shadow' } });
    await fireEvent.click(within(panel).getByTestId('files-upload-start'));
    const error = await within(panel).findByTestId('transfer-error');
    expect(error.textContent).toContain("paw: /etc/shadow is not allowed by the grant's file rules");
    expect(within(panel).getByTestId('transfer').dataset['phase']).toBe('failed');
  });

  it('downloads a remote file and shows where it was saved and its SHA-256', async () => {
    const { core, panel } = await openFilesPanel();
    await fireEvent.input(within(panel).getByTestId('files-download-path'), { target: { value: '/tmp/report.csv' } });
    await fireEvent.click(within(panel).getByTestId('files-download-start'));
    const sha = await within(panel).findByTestId('transfer-sha256');
    expect(sha.textContent).toBe(await sha256Hex(core.files.remote.get('/tmp/report.csv') ?? new Uint8Array()));
    expect(within(panel).getByTestId('transfer-local-path').textContent).toBe('/home/ada/Downloads/report.csv');
    expect(within(panel).getByTestId('transfer').dataset['direction']).toBe('download');
  });

  it('says a missing remote file is missing', async () => {
    const { panel } = await openFilesPanel();
    await fireEvent.input(within(panel).getByTestId('files-download-path'), { target: { value: '/tmp/nope' } });
    await fireEvent.click(within(panel).getByTestId('files-download-start'));
    expect((await within(panel).findByTestId('transfer-error')).textContent).toContain('No such file');
  });

  it('disables everything when the broker ends the connection, and closes on request', async () => {
    const { core, panel } = await openFilesPanel();
    const id = panel.dataset['sessionId'] ?? '';
    core.files.end(id, 'grant_ended', 'the grant ended');
    const ended = await within(panel).findByTestId('files-ended');
    expect(ended.dataset['reason']).toBe('grant_ended');
    expect(within(panel).getByTestId<HTMLInputElement>('files-upload-input').disabled).toBe(true);
    expect(within(panel).getByTestId<HTMLButtonElement>('files-download-start').disabled).toBe(true);
    await fireEvent.click(within(panel).getByTestId('files-close'));
    await waitFor(() => expect(screen.queryByTestId('files-panel')).toBeNull());
    // An ended connection is not closed again in the core.
    expect(core.calls.some((c) => c.cmd === 'close_files')).toBe(false);
  });
});
