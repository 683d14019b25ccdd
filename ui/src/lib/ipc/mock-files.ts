/**
 * The file-transfer half of the fake core (see mock.ts): file connections opened with a session
 * step-up on an active SSH grant, a small in-memory remote file system, uploads in chunks and
 * downloads with progress through the connection's channel, real SHA-256s, and cancel. Test and
 * dev use only.
 *
 * The mock broker's file rules: anything under `/etc` is refused with a `paw: ` message, like
 * the real broker's SFTP status errors. A test may hold uploads' closes (`holdCloses`) to see
 * the "finishing" state, and release them with `releaseCloses`.
 */
import type { ApiError, FilesView, RemoteEntry, RemoteListing, TransferResult, TransferStart } from './bindings';
import { MockChannel, type SessionModel } from './mock-sessions';

export const FILES_COMMANDS: ReadonlySet<string> = new Set([
  'open_files',
  'close_files',
  'list_remote',
  'start_upload',
  'upload_chunk',
  'start_download',
  'finish_transfer',
  'cancel_transfer',
]);

/** Commands of this model that use the security key. */
export const FILES_KEY_COMMANDS: readonly string[] = ['open_files'];

/** The largest chunk the mock takes, small so tests see several chunks. */
export const MOCK_CHUNK_BYTES = 4;

function apiError(code: ApiError['code'], message: string): ApiError {
  return { code, message };
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

function str(value: unknown, key: string): string {
  const v = field(value, key);
  if (typeof v !== 'string') throw apiError('bad_request', `\`${key}\` is required`);
  return v;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

interface Upload {
  kind: 'upload';
  sessionId: string;
  path: string;
  size: number;
  parts: Uint8Array<ArrayBuffer>[];
  done: number;
  cancelled: boolean;
}

interface Download {
  kind: 'download';
  sessionId: string;
  path: string;
  data: Uint8Array<ArrayBuffer>;
  local: string;
  cancelled: boolean;
}

export class FilesModel {
  /** The remote files by absolute path. */
  readonly remote = new Map<string, Uint8Array<ArrayBuffer>>([
    ['/root/notes.txt', new TextEncoder().encode('hello from the target\n')],
    ['/tmp/report.csv', new TextEncoder().encode('a,b\n1,2\n')],
  ]);
  readonly dirs = new Set(['/', '/root', '/tmp', '/etc']);
  /** Open connections of the signed-in user: their channels. */
  readonly connections = new Map<string, MockChannel>();
  private readonly transfers = new Map<string, Upload | Download>();
  /** When set, an upload's finish waits for `releaseCloses` (the broker holds the close). */
  holdCloses = false;
  private held: (() => void)[] = [];
  private nextId = 1;

  constructor(private readonly sessions: SessionModel) {}

  /** The broker ends a connection (its grant ended, say). */
  end(sessionId: string, reason: string, message = reason.replace(/_/g, ' ')): void {
    const channel = this.connections.get(sessionId);
    if (channel === undefined) return;
    this.connections.delete(sessionId);
    channel.send({ type: 'ended', reason, message });
  }

  releaseCloses(): void {
    const held = this.held;
    this.held = [];
    for (const release of held) release();
  }

  private channel(sessionId: string): MockChannel {
    const c = this.connections.get(sessionId);
    if (c === undefined) throw apiError('bad_request', 'session_id: no such open file connection');
    return c;
  }

  private check(path: string): void {
    if (!path.startsWith('/')) throw apiError('bad_request', 'remote_path: an absolute path (starting with /)');
    if (path === '/etc' || path.startsWith('/etc/')) {
      throw apiError('forbidden', `paw: ${path} is not allowed by the grant's file rules`);
    }
  }

  /** Answers a files command; `undefined` when `cmd` is not one. */
  handle(cmd: string, args: unknown, requireUser: () => string): unknown {
    if (!FILES_COMMANDS.has(cmd)) return undefined;
    requireUser();
    const input = field(args, 'input');
    switch (cmd) {
      case 'open_files': {
        const grant = this.sessions.takeSession(field(args, 'id'));
        if (grant.target_kind !== 'ssh' || grant.state !== 'active') {
          throw apiError('bad_request', 'grant_id: files move on an active SSH grant');
        }
        const channelId = field(field(args, 'channel'), 'id');
        if (typeof channelId !== 'number') throw apiError('bad_request', 'expected { id, channel }');
        const view: FilesView = {
          session_id: `sf-${this.nextId++}`,
          grant_id: grant.id,
          target: grant.target,
          role: grant.role,
          home: '/root',
          grant_ends_at_ms: grant.ends_at_ms ?? 0,
        };
        this.connections.set(view.session_id, new MockChannel(channelId));
        return view;
      }
      case 'close_files': {
        const id = str(input, 'session_id');
        this.end(id, 'closed', 'you closed it');
        return null;
      }
      case 'list_remote': {
        this.channel(str(input, 'session_id'));
        const path = str(input, 'path').replace(/(.)\/+$/, '$1');
        this.check(path);
        if (!this.dirs.has(path)) throw apiError('not_found', `resolving the directory: No such file`);
        const prefix = path === '/' ? '/' : `${path}/`;
        const entries: RemoteEntry[] = [];
        for (const d of this.dirs) {
          if (d !== path && d.startsWith(prefix) && !d.slice(prefix.length).includes('/')) {
            entries.push({ name: d.slice(prefix.length), kind: 'dir', size: null, modified_ms: null });
          }
        }
        for (const [p, data] of this.remote) {
          if (p.startsWith(prefix) && !p.slice(prefix.length).includes('/')) {
            entries.push({ name: p.slice(prefix.length), kind: 'file', size: data.length, modified_ms: null });
          }
        }
        entries.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'dir' ? -1 : 1));
        const listing: RemoteListing = { path, entries, truncated: false };
        return listing;
      }
      case 'start_upload': {
        const sessionId = str(input, 'session_id');
        this.channel(sessionId);
        const path = str(input, 'remote_path');
        this.check(path);
        const size = field(input, 'size');
        if (typeof size !== 'number') throw apiError('bad_request', '`size` is required');
        const id = `tr-${this.nextId++}`;
        this.transfers.set(id, { kind: 'upload', sessionId, path, size, parts: [], done: 0, cancelled: false });
        const start: TransferStart = { transfer_id: id, total: size, chunk_bytes: MOCK_CHUNK_BYTES, local_path: null };
        return start;
      }
      case 'upload_chunk': {
        const t = this.transfer(str(input, 'transfer_id'));
        if (t.kind !== 'upload') throw apiError('bad_request', 'transfer_id: not an upload');
        if (t.cancelled) throw apiError('conflict', 'the upload was cancelled');
        const offset = field(input, 'offset');
        const bytes = Uint8Array.from(atob(str(input, 'data')), (c) => c.charCodeAt(0));
        if (offset !== t.done) throw apiError('bad_request', `offset: expected the bytes from ${t.done}, got ${String(offset)}`);
        if (bytes.length > MOCK_CHUNK_BYTES) throw apiError('bad_request', 'data: too large');
        if (t.done + bytes.length > t.size) throw apiError('bad_request', `data: more than the declared ${t.size} bytes`);
        t.parts.push(bytes);
        t.done += bytes.length;
        this.channel(t.sessionId).send({ type: 'progress', transfer_id: str(input, 'transfer_id'), done: t.done, total: t.size });
        return null;
      }
      case 'start_download': {
        const sessionId = str(input, 'session_id');
        this.channel(sessionId);
        const path = str(input, 'remote_path');
        this.check(path);
        const data = this.remote.get(path);
        if (data === undefined) throw apiError('not_found', 'opening the remote file: No such file');
        const id = `tr-${this.nextId++}`;
        const local = `/home/ada/Downloads/${path.split('/').pop() ?? 'download'}`;
        this.transfers.set(id, { kind: 'download', sessionId, path, data, local, cancelled: false });
        const start: TransferStart = { transfer_id: id, total: data.length, chunk_bytes: 0, local_path: local };
        return start;
      }
      case 'cancel_transfer': {
        this.transfer(str(input, 'transfer_id')).cancelled = true;
        this.releaseCloses();
        return null;
      }
      case 'finish_transfer': {
        const id = str(input, 'transfer_id');
        return this.finish(id, this.transfer(id));
      }
    }
    return undefined;
  }

  private transfer(id: string): Upload | Download {
    const t = this.transfers.get(id);
    if (t === undefined) throw apiError('bad_request', 'transfer_id: no such transfer (it may have ended)');
    return t;
  }

  private async finish(id: string, t: Upload | Download): Promise<TransferResult> {
    const base = { transfer_id: id, remote_path: t.path, cancelled: false, message: null };
    if (t.kind === 'upload') {
      if (!t.cancelled && t.done === t.size) {
        this.channel(t.sessionId).send({ type: 'closing', transfer_id: id });
        if (this.holdCloses) {
          this.channel(t.sessionId).send({
            type: 'notice',
            message: `paw: ${t.path} waits: confirm it with your security key in the paw app (held 300 s, hold h-1)`,
          });
          await new Promise<void>((resolve) => this.held.push(resolve));
        }
      }
      this.transfers.delete(id);
      if (t.cancelled) {
        return {
          ...base,
          direction: 'upload',
          local_path: null,
          bytes: t.done,
          sha256: '',
          cancelled: true,
          message: `The upload was cancelled after ${t.done} of ${t.size} bytes; ${t.path} may be left partial on the target.`,
        };
      }
      if (t.done !== t.size) throw apiError('bad_request', `only ${t.done} of ${t.size} bytes were sent`);
      const data = new Uint8Array(t.size);
      let at = 0;
      for (const p of t.parts) {
        data.set(p, at);
        at += p.length;
      }
      this.remote.set(t.path, data);
      return { ...base, direction: 'upload', local_path: null, bytes: data.length, sha256: await sha256(data) };
    }
    this.transfers.delete(id);
    if (t.cancelled) {
      return {
        ...base,
        direction: 'download',
        local_path: null,
        bytes: 0,
        sha256: '',
        cancelled: true,
        message: 'The download was cancelled after 0 bytes; the partial file was removed.',
      };
    }
    this.channel(t.sessionId).send({ type: 'progress', transfer_id: id, done: t.data.length, total: t.data.length });
    return { ...base, direction: 'download', local_path: t.local, bytes: t.data.length, sha256: await sha256(t.data) };
  }
}
