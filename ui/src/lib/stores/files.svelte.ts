import {
  cancelTransfer,
  closeFiles,
  finishTransfer,
  startDownload,
  startUpload,
  uploadChunk,
  type ApiError,
  type FilesEvent,
  type FilesView,
  type GrantView,
  type TransferResult,
} from '../ipc';
import type { StepUpStore } from './stepup.svelte';

export type TransferPhase = 'starting' | 'running' | 'closing' | 'done' | 'cancelled' | 'failed';

export interface Transfer {
  /** The core's id once started; a local key before. */
  id: string;
  direction: 'upload' | 'download';
  remotePath: string;
  done: number;
  total: number;
  phase: TransferPhase;
  /** Where a download is being written (the core chose it). */
  localPath: string | null;
  result: TransferResult | null;
  error: ApiError | null;
}

export interface FilesConnection {
  view: FilesView;
  ended: { reason: string; message: string } | null;
  /** The broker's last words about the connection (a write it holds for a step-up, say). */
  notice: string | null;
  transfers: Transfer[];
}

/** Bytes → base64, in slices so a large chunk does not overflow the argument list. */
function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** A slice of the picked file as bytes (FileReader: the WebView has it, and so has jsdom). */
function readBytes(blob: Blob): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(new Uint8Array(reader.result as ArrayBuffer));
    reader.onerror = () => reject(reader.error ?? new Error('the file could not be read'));
    reader.readAsArrayBuffer(blob);
  });
}

let localKeys = 0;

/**
 * The signed-in user's file connections and their transfers, owned by the app (like the
 * terminals) so that a transfer goes on while the user looks at another area. An upload reads
 * the file the user picked, a chunk at a time, and hands each to the core in order; the core
 * reports progress and the hash. The credential and the local download path's choice stay in
 * the core.
 */
export class FilesStore {
  connections = $state.raw<FilesConnection[]>([]);

  /**
   * Runs the session step-up for `grant` and opens a file connection on it. Resolves with the
   * view, or `null` when the user cancelled; rejects with an `ApiError`.
   */
  async open(stepup: StepUpStore, grant: GrantView): Promise<FilesView | null> {
    let sessionId: string | null = null;
    const early: FilesEvent[] = [];
    const view = await stepup.openFiles({ grant_id: grant.id }, (event) => {
      if (sessionId === null) early.push(event);
      else this.event(sessionId, event);
    });
    if (view === null) return null;
    sessionId = view.session_id;
    this.connections = [...this.connections, { view, ended: null, notice: null, transfers: [] }];
    for (const event of early) this.event(view.session_id, event);
    return view;
  }

  connection(sessionId: string): FilesConnection | undefined {
    return this.connections.find((c) => c.view.session_id === sessionId);
  }

  /** Ends a connection in the core (when still live) and forgets it. */
  async close(sessionId: string): Promise<void> {
    const c = this.connection(sessionId);
    if (c === undefined) return;
    if (c.ended === null) await closeFiles({ session_id: sessionId });
    this.connections = this.connections.filter((x) => x.view.session_id !== sessionId);
  }

  /** Forgets everything (sign-out: the core ends the connections itself). */
  clear(): void {
    this.connections = [];
  }

  /** Uploads `file` to `remotePath`; settles when it ended (the transfer row says how). */
  async upload(sessionId: string, file: Blob, remotePath: string): Promise<void> {
    const key = `local-${++localKeys}`;
    this.add(sessionId, {
      id: key,
      direction: 'upload',
      remotePath,
      done: 0,
      total: file.size,
      phase: 'starting',
      localPath: null,
      result: null,
      error: null,
    });
    let id = key;
    try {
      const start = await startUpload({ session_id: sessionId, remote_path: remotePath, size: file.size });
      id = start.transfer_id;
      this.patch(sessionId, key, { id, phase: 'running' });
      const step = Math.max(1, start.chunk_bytes);
      for (let offset = 0; offset < file.size; offset += step) {
        if (this.transfer(sessionId, id)?.phase !== 'running') break; // cancelled meanwhile
        const bytes = await readBytes(file.slice(offset, offset + step));
        await uploadChunk({ transfer_id: id, offset, data: toBase64(bytes) });
      }
      const result = await finishTransfer({ transfer_id: id });
      this.finished(sessionId, id, result);
      this.update(sessionId, (c) => ({ ...c, notice: null }));
    } catch (reason) {
      // A chunk refused because of a cancel: the finish says what the cancel left behind.
      if (id !== key && this.transfer(sessionId, id)?.phase === 'cancelled') {
        try {
          this.finished(sessionId, id, await finishTransfer({ transfer_id: id }));
          return;
        } catch {
          // Already answered: the cancel's own state stays.
        }
      }
      this.patch(sessionId, id, { phase: 'failed', error: reason as ApiError });
    }
  }

  /** Downloads `remotePath` into the user's download directory (the core names the file). */
  async download(sessionId: string, remotePath: string): Promise<void> {
    const key = `local-${++localKeys}`;
    this.add(sessionId, {
      id: key,
      direction: 'download',
      remotePath,
      done: 0,
      total: 0,
      phase: 'starting',
      localPath: null,
      result: null,
      error: null,
    });
    let id = key;
    try {
      const start = await startDownload({ session_id: sessionId, remote_path: remotePath });
      id = start.transfer_id;
      // Progress events may have come first: keep what they said.
      const seen = this.transfer(sessionId, key)?.done ?? 0;
      this.patch(sessionId, key, { id, phase: 'running', total: start.total, done: seen, localPath: start.local_path });
      this.finished(sessionId, id, await finishTransfer({ transfer_id: id }));
    } catch (reason) {
      this.patch(sessionId, id, { phase: 'failed', error: reason as ApiError });
    }
  }

  /** Asks the core to stop a transfer; its row then says what was left behind. */
  async cancel(sessionId: string, transferId: string): Promise<void> {
    const t = this.transfer(sessionId, transferId);
    if (t === undefined || (t.phase !== 'running' && t.phase !== 'closing')) return;
    this.patch(sessionId, transferId, { phase: 'cancelled' });
    try {
      await cancelTransfer({ transfer_id: transferId });
    } catch {
      // The transfer ended first: its finish answers with how.
    }
  }

  /** Forgets the finished transfers of a connection. */
  clearDone(sessionId: string): void {
    this.update(sessionId, (c) => ({
      ...c,
      transfers: c.transfers.filter((t) => t.phase === 'starting' || t.phase === 'running' || t.phase === 'closing'),
    }));
  }

  transfer(sessionId: string, id: string): Transfer | undefined {
    return this.connection(sessionId)?.transfers.find((t) => t.id === id);
  }

  private finished(sessionId: string, id: string, result: TransferResult): void {
    this.patch(sessionId, id, {
      phase: result.cancelled ? 'cancelled' : 'done',
      result,
      done: result.cancelled ? (this.transfer(sessionId, id)?.done ?? result.bytes) : result.bytes,
      total: result.cancelled ? (this.transfer(sessionId, id)?.total ?? result.bytes) : result.bytes,
      localPath: result.local_path,
    });
  }

  private event(sessionId: string, event: FilesEvent): void {
    switch (event.type) {
      case 'progress':
        this.patch(sessionId, event.transfer_id, { done: event.done, total: event.total });
        break;
      case 'closing':
        if (this.transfer(sessionId, event.transfer_id)?.phase === 'running') {
          this.patch(sessionId, event.transfer_id, { phase: 'closing' });
        }
        break;
      case 'notice':
        this.update(sessionId, (c) => ({ ...c, notice: event.message }));
        break;
      case 'ended':
        this.update(sessionId, (c) => ({ ...c, ended: { reason: event.reason, message: event.message } }));
        break;
    }
  }

  private add(sessionId: string, t: Transfer): void {
    this.update(sessionId, (c) => ({ ...c, transfers: [t, ...c.transfers] }));
  }

  private patch(sessionId: string, id: string, fields: Partial<Transfer>): void {
    this.update(sessionId, (c) => ({
      ...c,
      transfers: c.transfers.map((t) => (t.id === id ? { ...t, ...fields } : t)),
    }));
  }

  private update(sessionId: string, f: (c: FilesConnection) => FilesConnection): void {
    this.connections = this.connections.map((c) => (c.view.session_id === sessionId ? f(c) : c));
  }
}

/** Bytes in words: `3.2 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
