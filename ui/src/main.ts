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
    const { installMockCore } = await import('./lib/ipc/mock');
    installMockCore({
      settings: { broker_url: 'https://pawd.example.com', ca_path: '/etc/paw/broker-ca.pem', ca: null },
      user: { name: 'Ada Admin', roles: ['admin'] },
      grant: { id: 'g-1', target: 'ssh prod-db-1', role: 'root', remaining_ms: 14 * 60_000 + 32_000 },
    });
  }
  const target = document.getElementById('app');
  if (target === null) throw new Error('missing #app');
  mount(App, { target });
}

void boot();
