import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MOCK_DOWNLOAD_DIR, mockSessionFile } from '../lib/ipc/mock';
import { CONFIGURED, renderApp } from './helpers';

/**
 * The Files section of a session's history detail (next to its replay), against the mock core:
 * what the broker kept of each file, saving a captured copy (only where it went and its hash
 * come back, never the bytes) and the loading, empty and error states. The player is faked as
 * in history.test.ts: jsdom has no layout or WebAssembly for it.
 */
vi.mock('../lib/replay/player', () => ({
  createPlayer: () =>
    Promise.resolve({
      onState(listener: (s: 'ready') => void) {
        listener('ready');
      },
      seekMarker() {},
      dispose() {},
    }),
  IDLE_TIME_LIMIT: 2,
}));

const HANA = { name: 'hana', roles: ['helpdesk'] };

async function openFiles(extra: Parameters<typeof renderApp>[0] = {}, session = 'se-ada-2') {
  const result = renderApp({ settings: CONFIGURED, user: HANA, ...extra }, '#/history');
  await fireEvent.click(await screen.findByTestId(`history-replay-${session}`));
  const section = await screen.findByTestId('session-files');
  return { ...result, section };
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('session files (help-desk)', () => {
  it('lists each file with direction, path, size, hash, outcome and what was kept', async () => {
    const { core, section } = await openFiles();
    const first = await within(section).findByTestId('session-file-1');
    expect(core.calls.find((c) => c.cmd === 'session_files')?.args).toEqual({ input: { session_id: 'se-ada-2' } });
    expect(within(section).getByRole('heading', { name: 'Files' })).toBeTruthy();

    const files = core.history.files['se-ada-2'] ?? [];
    const conf = files[0];
    if (conf === undefined || conf.sha256 === null) throw new Error('default files changed');
    expect(first.textContent).toContain('/etc/nginx/nginx.conf');
    expect(screen.getByTestId('session-file-direction-1').textContent).toBe('Upload');
    expect(screen.getByTestId('session-file-size-1').textContent).toBe('2.4 KiB');
    expect(screen.getByTestId('session-file-size-1').title).toBe('2481 bytes');
    // The hash is shortened on screen, whole on hover.
    const sha = screen.getByTestId('session-file-sha-1');
    expect(sha.textContent).toBe(`${conf.sha256.slice(0, 12)}…`);
    expect(sha.title).toBe(conf.sha256);
    expect(screen.getByTestId('session-file-outcome-1').textContent).toBe('Succeeded');
    expect(screen.getByTestId('session-file-capture-1').textContent).toBe('Captured');

    expect(screen.getByTestId('session-file-direction-2').textContent).toBe('Download');
    expect(screen.getByTestId('session-file-capture-2').textContent).toBe('Partial copy');

    // A refused write: no hash, no copy, nothing to save.
    const denied = screen.getByTestId('session-file-3');
    expect(screen.getByTestId('session-file-outcome-3').textContent).toBe('Refused');
    expect(denied.textContent).toContain('No SHA-256');
    expect(screen.getByTestId('session-file-capture-3').textContent).toBe('Not captured');
    expect(screen.queryByTestId('session-file-save-3')).toBeNull();

    // Native buttons with names that say which file: in the tab order, Enter and Space press them.
    const save = within(section).getByRole('button', { name: 'Save the copy of /etc/nginx/nginx.conf' });
    expect(save.tagName).toBe('BUTTON');
    expect(save.tabIndex).toBe(0);
    expect(within(section).getByRole('button', { name: 'Save the partial copy of /var/log/nginx/error.log' })).toBeTruthy();
    expect(within(section).getByRole('button', { name: 'Copy the SHA-256 of /etc/nginx/nginx.conf' })).toBeTruthy();
  });

  it('saves a captured copy and shows where it went and its hash, never the bytes', async () => {
    const { core } = await openFiles();
    const save = await screen.findByTestId('session-file-save-1');
    await fireEvent.click(save);
    const saved = await screen.findByTestId('session-file-saved-1');
    const conf = core.history.files['se-ada-2']?.[0];
    expect(core.calls.filter((c) => c.cmd === 'save_session_file').map((c) => c.args)).toEqual([{ input: { session_id: 'se-ada-2', n: 1 } }]);
    expect(screen.getByTestId('session-file-local-1').textContent).toBe(`${MOCK_DOWNLOAD_DIR}/nginx.conf`);
    expect(screen.getByTestId('session-file-saved-sha-1').textContent).toBe(conf?.sha256);
    expect(saved.textContent).toContain('2481 bytes');
    expect(screen.queryByTestId('session-file-partial-1')).toBeNull();
    // What the core answered carries no contents.
    const answer = core.history.saved[0];
    expect(Object.keys(answer ?? {}).sort()).toEqual(['bytes', 'complete', 'local_path', 'n', 'remote_path', 'session_id', 'sha256']);
    expect(save.textContent?.trim()).toBe('Save copy');

    // Again: a new file beside the first, never over it.
    await fireEvent.click(save);
    await waitFor(() => expect(screen.getByTestId('session-file-local-1').textContent).toBe(`${MOCK_DOWNLOAD_DIR}/nginx (2).conf`));
  });

  it('says when a saved copy holds only the first bytes of the file', async () => {
    await openFiles();
    await fireEvent.click(await screen.findByTestId('session-file-save-2'));
    const partial = await screen.findByTestId('session-file-partial-2');
    expect(partial.textContent).toContain('only the first bytes of the 87 MiB file');
    // The hash shown is the copy's own, not the whole file's in the list.
    expect(screen.getByTestId('session-file-saved-2').textContent).toContain('SHA-256 of the copy');
  });

  it('shows the code when a copy no longer matches its hash, and the other files still save', async () => {
    const { core } = await openFiles();
    core.history.tampered.add('se-ada-2:1');
    await fireEvent.click(await screen.findByTestId('session-file-save-1'));
    const error = await screen.findByTestId('session-file-error-1');
    expect(error.getAttribute('role')).toBe('alert');
    expect(error.dataset['code']).toBe('recording_tampered');
    expect(error.textContent).toContain('recording_tampered');
    expect(error.textContent).toContain('no longer matches the SHA-256 the broker kept');
    expect(screen.queryByTestId('session-file-saved-1')).toBeNull();
    await fireEvent.click(screen.getByTestId('session-file-save-2'));
    await screen.findByTestId('session-file-saved-2');
    expect(screen.getByTestId('session-file-error-1')).toBeTruthy();
  });

  it('says so when the session moved no files', async () => {
    await openFiles({}, 'se-dave-0');
    const empty = await screen.findByTestId('session-files-empty');
    expect(empty.textContent).toBe('No files moved in this session.');
    expect(screen.queryByTestId(/^session-file-\d/)).toBeNull();
  });

  it('shows loading first, then the files', async () => {
    renderApp({ settings: CONFIGURED, user: HANA, delayMs: 30 }, '#/history');
    await fireEvent.click(await screen.findByTestId('history-replay-se-ada-2'));
    expect(await screen.findByTestId('session-files-loading')).toBeTruthy();
    await screen.findByTestId('session-file-1');
    expect(screen.queryByTestId('session-files-loading')).toBeNull();
  });

  it('shows a list error with its code, and Retry loads again', async () => {
    const renderOpts = { settings: CONFIGURED, user: HANA };
    const { core } = renderApp(renderOpts, '#/history');
    core.history.fail('session_files', { code: 'broker_unreachable', message: 'connection refused' });
    await fireEvent.click(await screen.findByTestId('history-replay-se-ada-2'));
    const error = await screen.findByTestId('session-files-error');
    expect(error.dataset['code']).toBe('broker_unreachable');
    expect(error.textContent).toContain('(broker_unreachable)');
    expect(error.textContent).toContain('connection refused');
    await fireEvent.click(within(error).getByRole('button', { name: 'Retry' }));
    await screen.findByTestId('session-file-1');
    expect(screen.queryByTestId('session-files-error')).toBeNull();
  });

  it('the files show even when the recording cannot be replayed', async () => {
    const { core } = renderApp({ settings: CONFIGURED, user: HANA }, '#/history');
    core.history.fail('session_recording', { code: 'recording_tampered', message: 'changed' });
    await fireEvent.click(await screen.findByTestId('history-replay-se-ada-2'));
    await screen.findByTestId('replay-error');
    expect(await screen.findByTestId('session-file-1')).toBeTruthy();
  });

  it('copies the whole hash', async () => {
    const writeText = vi.fn(() => Promise.resolve());
    vi.stubGlobal('navigator', { ...navigator, clipboard: { writeText } });
    const hash = 'ab'.repeat(32);
    await openFiles({ sessionFiles: { 'se-ada-2': [mockSessionFile({ n: 1, path: '/srv/app.tar', sha256: hash })] } });
    await fireEvent.click(await screen.findByTestId('session-file-copy-1'));
    expect(writeText).toHaveBeenCalledWith(hash);
    expect((await screen.findByText('Copied.')).getAttribute('role')).toBe('status');
  });
});
