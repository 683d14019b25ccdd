import { fireEvent, screen } from '@testing-library/svelte';
import type { GrantView } from '../lib/ipc';
import { defaultGrants, mockGrant, type MockOptions } from '../lib/ipc/mock';
import { CONFIGURED, renderApp } from './helpers';

export const ADA = { name: 'ada', roles: ['engineer'] };
export const MIN = 60_000;
export const JUSTIFICATION = 'Restart the stuck nginx worker on web-1';

/** Renders the app signed in as ada on `hash`, against the mock core with `options`. */
export function renderSignedIn(hash: string, options: MockOptions = {}): ReturnType<typeof renderApp> {
  return renderApp({ settings: CONFIGURED, user: ADA, ...options }, hash);
}

/** An active grant of ada's, ending `endsInMs` after the broker's `now`. */
export function activeGrant(now: number, endsInMs: number, fields: Partial<GrantView> = {}): GrantView {
  return mockGrant({
    id: 'gr-ada-1',
    user: 'ada',
    target: 'web-1',
    state: 'active',
    created_at_ms: now - 10 * MIN,
    starts_at_ms: now - 10 * MIN,
    ends_at_ms: now + endsInMs,
    ...fields,
  });
}

/** ada's grants plus the default colleagues' requests and reviews. */
export function withDefaults(...mine: ((now: number) => GrantView)[]): (now: number) => GrantView[] {
  return (now) => [...mine.map((m) => m(now)), ...defaultGrants(now)];
}

export function grantRows(): HTMLElement[] {
  return screen.queryAllByTestId('grant-row');
}

export function grantRow(id: string): HTMLElement {
  const row = grantRows().find((r) => r.dataset['grantId'] === id);
  if (row === undefined) throw new Error(`no grant row ${id}: ${grantRows().map((r) => r.dataset['grantId']).join(', ')}`);
  return row;
}

export function inboxItem(id: string): HTMLElement {
  const item = screen.queryAllByTestId('inbox-item').find((r) => r.dataset['requestId'] === id);
  if (item === undefined) throw new Error(`no inbox item ${id}`);
  return item;
}

export async function type(testid: string, value: string): Promise<void> {
  await fireEvent.input(screen.getByTestId(testid), { target: { value } });
}

export async function choose(testid: string, value: string): Promise<void> {
  await fireEvent.change(screen.getByTestId(testid), { target: { value } });
}

/** Fills the request form (the entitlement first, since choosing one resets target and duration). */
export async function fillRequest(fields: {
  entitlement?: string;
  target?: string;
  minutes?: string;
  justification?: string;
  ticket?: string;
}): Promise<void> {
  if (fields.entitlement !== undefined) await choose('request-entitlement', fields.entitlement);
  if (fields.target !== undefined) await type('request-target', fields.target);
  if (fields.minutes !== undefined) await type('request-duration', fields.minutes);
  if (fields.justification !== undefined) await type('request-justification', fields.justification);
  if (fields.ticket !== undefined) await type('request-ticket', fields.ticket);
}
