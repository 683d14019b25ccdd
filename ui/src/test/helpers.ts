import { render } from '@testing-library/svelte';
import { tick } from 'svelte';
import { vi } from 'vitest';
import App from '../App.svelte';
import type { SettingsView } from '../lib/ipc';
import { installMockCore, type MockCore, type MockOptions } from '../lib/ipc/mock';

export const CONFIGURED: Readonly<SettingsView> = {
  broker_url: 'https://pawd.example.com',
  fallback_urls: [],
  ca_path: '/etc/paw/ca.pem',
  ca: null,
};

/** Renders the whole app against a fresh mock core. */
export function renderApp(options: MockOptions = {}, hash = ''): { core: MockCore; container: HTMLElement } {
  window.history.replaceState(null, '', `/${hash}`);
  const core = installMockCore(options);
  const { container } = render(App);
  return { core, container };
}

/** Lets pending IPC promises settle under fake timers, then flushes Svelte. */
export async function settle(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await tick();
}

export function useFakeClock(): void {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'],
  });
}
