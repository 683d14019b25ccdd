/**
 * The one place that touches xterm.js. Components talk to a `TerminalHandle`, so tests can
 * replace this module (`vi.mock`) where xterm cannot run (jsdom has no layout or canvas).
 *
 * CSP note: xterm's DOM renderer sets its theme through `<style>` elements it creates at run
 * time, which `style-src 'self'` refuses. `./xterm-static.css` gives the same rules as a file,
 * so the terminal looks right with or without them.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import './xterm-static.css';

export interface TerminalSize {
  cols: number;
  rows: number;
}

export interface TerminalHandle {
  /** Writes output; `done` runs once xterm has parsed it (the buffer then shows it). */
  write(data: Uint8Array, done?: () => void): void;
  /** What the user types or pastes, as xterm encodes it. Returns the unsubscribe function. */
  onData(listener: (data: string) => void): () => void;
  /**
   * Sees every key event before xterm does; return false to keep it from the terminal (copy
   * and paste shortcuts).
   */
  onKey(handler: (event: KeyboardEvent) => boolean): void;
  /** Fits the terminal to its element; the new size, or `null` when it has no size (hidden). */
  fit(): TerminalSize | null;
  /** The visible lines of the active buffer, right-trimmed. */
  lines(): string[];
  selection(): string;
  /** No more input: the session ended. */
  disableInput(): void;
  /** Back to a blank terminal (a watched session's screen is drawn again). */
  reset(): void;
  /** Sets the size in cells (a watched session has its user's size, not the element's). */
  resize(cols: number, rows: number): void;
  focus(): void;
  dispose(): void;
}

const THEME = {
  background: '#0f1117',
  foreground: '#e5e7ee',
  cursor: '#e5e7ee',
  selectionBackground: '#3a4170',
  // The same 16 colours as xterm-static.css.
  black: '#2e3440',
  red: '#e06c75',
  green: '#98c379',
  yellow: '#e5c07b',
  blue: '#61afef',
  magenta: '#c678dd',
  cyan: '#56b6c2',
  white: '#d7dae0',
  brightBlack: '#5c6370',
  brightRed: '#ff7b86',
  brightGreen: '#b5e890',
  brightYellow: '#ffd68a',
  brightBlue: '#7cc3ff',
  brightMagenta: '#de8cf5',
  brightCyan: '#7fd4df',
  brightWhite: '#ffffff',
};

export interface TerminalOptions {
  /**
   * A watched session: xterm takes no input at all (`disableStdin`), so nothing typed or pasted
   * into it is ever emitted; the caller attaches no data or key handler either.
   */
  readOnly?: boolean;
}

export function createTerminal(host: HTMLElement, options: TerminalOptions = {}): TerminalHandle {
  const readOnly = options.readOnly === true;
  const term = new Terminal({
    convertEol: false,
    cursorBlink: !readOnly,
    disableStdin: readOnly,
    fontFamily: "ui-monospace, 'SF Mono', Menlo, Consolas, 'DejaVu Sans Mono', 'Liberation Mono', monospace",
    fontSize: 13,
    scrollback: 5000,
    theme: THEME,
    allowProposedApi: false,
  });
  const fitAddon = new FitAddon();
  term.loadAddon(fitAddon);
  term.open(host);
  return {
    write(data, done) {
      term.write(data, done);
    },
    onData(listener) {
      const subscription = term.onData(listener);
      return () => subscription.dispose();
    },
    onKey(handler) {
      term.attachCustomKeyEventHandler(handler);
    },
    fit() {
      const proposed = fitAddon.proposeDimensions();
      if (proposed === undefined || !Number.isFinite(proposed.cols) || !Number.isFinite(proposed.rows)) return null;
      if (proposed.cols < 1 || proposed.rows < 1) return null;
      fitAddon.fit();
      return { cols: term.cols, rows: term.rows };
    },
    lines() {
      const buffer = term.buffer.active;
      const out: string[] = [];
      for (let y = buffer.viewportY; y < buffer.viewportY + term.rows; y++) {
        out.push(buffer.getLine(y)?.translateToString(true) ?? '');
      }
      return out;
    },
    selection() {
      return term.getSelection();
    },
    disableInput() {
      term.options.disableStdin = true;
      term.options.cursorBlink = false;
    },
    reset() {
      term.reset();
    },
    resize(cols, rows) {
      term.resize(Math.max(1, Math.floor(cols)), Math.max(1, Math.floor(rows)));
    },
    focus() {
      term.focus();
    },
    dispose() {
      term.dispose();
    },
  };
}
