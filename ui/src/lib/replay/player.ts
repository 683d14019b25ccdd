/**
 * The one place that touches asciinema-player. Components talk to a `ReplayHandle`, so tests
 * replace this module (`vi.mock`) where the player cannot run (jsdom has no layout, and the
 * player's terminal emulator is WebAssembly).
 *
 * CSP notes: the player ships its terminal emulator as WebAssembly inside its script, which the
 * app's CSP allows with `'wasm-unsafe-eval'` (WebAssembly compilation only — no `eval`, no
 * inline script); it styles elements through the CSSOM, which `style-src 'self'` allows, and
 * its stylesheet is bundled like ours. The recording is handed over as text: the player never
 * fetches anything.
 */
import 'asciinema-player/dist/bundle/asciinema-player.css';
import './player-theme.css';

/** What the replay pane shows about the player. */
export type ReplayState = 'loading' | 'ready' | 'playing' | 'paused' | 'ended';

/** Long pauses (someone reading a man page) play back as at most this many seconds. */
export const IDLE_TIME_LIMIT = 2;

export interface ReplayHandle {
  /** Reports state changes (the player's play, pause and end). */
  onState(listener: (state: ReplayState) => void): void;
  /**
   * Moves to the recording's marker number `index` (in the order of its `m` events; see
   * markers.ts), playing on if it was playing.
   */
  seekMarker(index: number): void;
  /** Removes the player and its listeners; safe to call twice. */
  dispose(): void;
}

/**
 * Checks that `cast` looks like asciicast v2 before the player sees it, so a bad answer is a
 * clear error here instead of a blank player.
 */
export function checkCast(cast: string): { cols: number; rows: number } {
  const first = cast.slice(0, cast.indexOf('\n') === -1 ? cast.length : cast.indexOf('\n'));
  let header: unknown;
  try {
    header = JSON.parse(first);
  } catch {
    throw new Error('the recording is not asciicast v2 (its first line is not JSON)');
  }
  const h = header as { version?: unknown; width?: unknown; height?: unknown };
  if (h.version !== 2 || typeof h.width !== 'number' || typeof h.height !== 'number') {
    throw new Error('the recording is not asciicast v2');
  }
  return { cols: h.width, rows: h.height };
}

/** Mounts a player for `cast` (asciicast v2 text) in `element` and starts it. */
export async function createPlayer(element: HTMLElement, cast: string): Promise<ReplayHandle> {
  const { cols, rows } = checkCast(cast);
  // Loaded on first use: the player (with its WebAssembly) is as large as the rest of the app.
  const AsciinemaPlayer = await import('asciinema-player');
  const listeners: ((state: ReplayState) => void)[] = [];
  const emit = (state: ReplayState): void => {
    for (const l of listeners) l(state);
  };
  const player = AsciinemaPlayer.create({ data: cast }, element, {
    cols,
    rows,
    autoPlay: true,
    preload: true,
    fit: 'width',
    idleTimeLimit: IDLE_TIME_LIMIT,
    terminalFontFamily: "ui-monospace, 'SF Mono', Menlo, Consolas, 'DejaVu Sans Mono', 'Liberation Mono', monospace",
    theme: 'paw',
  });
  player.addEventListener('play', () => emit('playing'));
  player.addEventListener('playing', () => emit('playing'));
  player.addEventListener('pause', () => emit('paused'));
  player.addEventListener('ended', () => emit('ended'));
  let disposed = false;
  return {
    onState(listener) {
      listeners.push(listener);
      listener('ready');
    },
    seekMarker(index) {
      // The player knows the markers' times after its own pause shortening; a seek it refuses
      // (the recording is gone or still loading) leaves the replay where it was.
      if (!disposed) player.seek({ marker: index }).catch(() => undefined);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      listeners.length = 0;
      player.dispose();
    },
  };
}
