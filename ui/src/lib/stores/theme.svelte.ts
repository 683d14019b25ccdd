/** Appearance preference. Not a secret, so localStorage is fine. */
export const THEMES = ['system', 'light', 'dark'] as const;
export type Theme = (typeof THEMES)[number];

const KEY = 'paw.theme';

function isTheme(value: unknown): value is Theme {
  return typeof value === 'string' && (THEMES as readonly string[]).includes(value);
}

function readStored(): Theme {
  try {
    const value = window.localStorage.getItem(KEY);
    return isTheme(value) ? value : 'system';
  } catch {
    return 'system';
  }
}

class ThemeStore {
  value = $state<Theme>('system');

  /** Reads the stored choice and applies it to <html data-theme>. */
  init(): void {
    this.value = readStored();
    this.apply();
  }

  set(theme: Theme): void {
    this.value = theme;
    try {
      window.localStorage.setItem(KEY, theme);
    } catch {
      // Storage may be unavailable; the choice still applies for this run.
    }
    this.apply();
  }

  private apply(): void {
    document.documentElement.dataset['theme'] = this.value;
  }
}

export const theme = new ThemeStore();
