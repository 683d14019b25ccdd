import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { hasCore } from './lib/ipc';
import { theme } from './lib/stores/theme.svelte';

async function boot(): Promise<void> {
  theme.init();
  // `npm run dev` in a plain browser has no core: use the fake one. Production builds drop
  // this branch entirely (import.meta.env.DEV is false), so the mock never ships.
  if (import.meta.env.DEV && !hasCore()) {
    const { defaultGrants, installMockCore, mockGrant, mockHold } = await import('./lib/ipc/mock');
    const me = 'Ada Admin';
    const min = 60_000;
    installMockCore({
      settings: {
        broker_url: 'https://pawd.example.com',
        fallback_urls: ['https://pawd-2.example.com'],
        ca_path: '/etc/paw/broker-ca.pem',
        ca: null,
      },
      user: { name: me, roles: ['admin'] },
      // The status bar shows the active grant below, counting down by the mock broker's clock.
      grants: (now) => [
        mockGrant({
          id: 'gr-ada-3',
          user: me,
          target: 'web-2',
          state: 'active',
          created_at_ms: now - 46 * min,
          starts_at_ms: now - 45 * min - 28_000,
          ends_at_ms: now + 14 * min + 32_000,
        }),
        ...defaultGrants(now),
        mockGrant({
          id: 'gr-ada-1',
          user: me,
          target: 'web-1',
          state: 'expired',
          created_at_ms: now - 26 * 60 * min,
          starts_at_ms: now - 26 * 60 * min,
          ends_at_ms: now - 25 * 60 * min,
          ended_at_ms: now - 25 * 60 * min,
          end_reason: 'expired',
        }),
      ],
      // A colleague's command waiting in the Approvals inbox; typing `rm …` in a terminal holds one of your own.
      holds: (now) => [
        mockHold({ id: '4f2a9c1e', user: 'dave', command: 'shutdown -r now', created_at: now - 20_000, expires_at: now + 100_000 }),
      ],
    });
  }
  const target = document.getElementById('app');
  if (target === null) throw new Error('missing #app');
  mount(App, { target });
}

void boot();
