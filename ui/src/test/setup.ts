import { cleanup } from '@testing-library/svelte';
import { afterEach, vi } from 'vitest';
import { resetMockCore } from '../lib/ipc/mock';

afterEach(() => {
  vi.useRealTimers();
  if (typeof window === 'undefined') return; // node-environment tests (source scans)
  cleanup();
  resetMockCore();
  window.history.replaceState(null, '', '/');
  window.localStorage.clear();
  document.documentElement.dataset['theme'] = 'system';
});
