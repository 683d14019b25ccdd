import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { createRawSnippet } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import DataTable from '../lib/components/DataTable.svelte';
import FilterBar, { TYPING_DELAY_MS, type FilterField } from '../lib/components/FilterBar.svelte';
import LoadState from '../lib/components/LoadState.svelte';
import Pager from '../lib/components/Pager.svelte';

const text = (html: string) => createRawSnippet(() => ({ render: () => html }));

function loadState(props: Partial<Parameters<typeof LoadState>[1]> = {}) {
  return render(LoadState, {
    testid: 'things',
    loading: false,
    loadingText: 'Loading the things…',
    errorLead: 'Could not load the things.',
    emptyContent: text('<span>Nothing here yet.</span>'),
    children: text('<ul data-testid="things-list"><li>one</li></ul>'),
    ...props,
  });
}

describe('LoadState', () => {
  it('says it is loading, as a status', () => {
    loadState({ loading: true });
    const note = screen.getByTestId('things-loading');
    expect(note.getAttribute('role')).toBe('status');
    expect(note.textContent).toContain('Loading the things…');
    expect(screen.queryByTestId('things-list')).toBeNull();
  });

  it('shows an error before anything else, with its code, and retries', async () => {
    const onretry = vi.fn();
    loadState({ loading: true, empty: true, error: { code: 'broker_unreachable', message: 'connection refused' }, onretry, explain: null });
    const error = screen.getByTestId('things-error');
    expect(error.getAttribute('role')).toBe('alert');
    expect(error.dataset['code']).toBe('broker_unreachable');
    expect(error.textContent).toContain('Could not load the things.');
    expect(error.textContent).toContain('connection refused');
    expect(screen.queryByTestId('things-loading')).toBeNull();
    const retry = within(error).getByRole('button', { name: 'Retry' });
    expect(retry.tagName).toBe('BUTTON');
    await fireEvent.click(retry);
    expect(onretry).toHaveBeenCalledOnce();
  });

  it('words the error code when asked to', () => {
    loadState({ error: { code: 'broker_unreachable', message: 'connection refused' } });
    expect(screen.getByTestId('things-error').textContent).toContain('The broker cannot be reached right now.');
  });

  it('has no Retry without a handler', () => {
    loadState({ error: { code: 'internal', message: 'boom' } });
    expect(within(screen.getByTestId('things-error')).queryByRole('button')).toBeNull();
  });

  it('shows the empty state when loaded and empty', () => {
    loadState({ empty: true, emptyIcon: 'history' });
    expect(screen.getByTestId('things-empty').textContent).toContain('Nothing here yet.');
    expect(screen.getByTestId('things-empty').querySelector('svg')).toBeTruthy();
    expect(screen.queryByTestId('things-list')).toBeNull();
  });

  it('shows the content otherwise', () => {
    loadState();
    expect(screen.getByTestId('things-list').textContent).toBe('one');
    for (const state of ['loading', 'error', 'empty']) expect(screen.queryByTestId(`things-${state}`)).toBeNull();
  });
});

const FIELDS: FilterField[] = [
  { kind: 'select', key: 'kind', label: 'Kind', testid: 'f-kind', options: [{ value: '', label: 'Any' }, { value: 'ssh', label: 'SSH' }] },
  { kind: 'search', key: 'text', label: 'Find', testid: 'f-text', placeholder: 'Anything', maxlength: 10, grow: true },
  { kind: 'datetime', key: 'from', label: 'From', testid: 'f-from', invalid: true },
  { kind: 'text', key: 'hidden', label: 'Hidden', testid: 'f-hidden', show: false },
];
const DEFAULTS = { kind: '', text: '', from: '', hidden: '' };

function filterBar(props: Partial<Parameters<typeof FilterBar>[1]> = {}) {
  const onapply = vi.fn();
  const result = render(FilterBar, {
    label: 'Filter the things',
    fields: FIELDS,
    values: { ...DEFAULTS },
    defaults: DEFAULTS,
    clearTestid: 'f-clear',
    onapply,
    ...props,
  });
  return { ...result, onapply };
}

describe('FilterBar', () => {
  it('draws a labelled form with one labelled control per shown field', () => {
    filterBar();
    const form = screen.getByRole('form', { name: 'Filter the things' });
    expect(within(form).getByLabelText('Kind')).toBe(screen.getByTestId('f-kind'));
    expect(within(form).getByLabelText('Find')).toBe(screen.getByTestId('f-text'));
    expect(screen.getByTestId('f-text').getAttribute('type')).toBe('search');
    expect(screen.getByTestId('f-text').getAttribute('maxlength')).toBe('10');
    expect(screen.getByTestId('f-from').getAttribute('type')).toBe('datetime-local');
    expect(screen.getByTestId('f-from').getAttribute('aria-invalid')).toBe('true');
    expect(screen.queryByTestId('f-hidden')).toBeNull();
    expect(screen.queryByTestId('f-clear')).toBeNull(); // nothing to clear yet
  });

  it('applies a choice at once, with the new values', async () => {
    const { onapply } = filterBar();
    await fireEvent.change(screen.getByTestId('f-kind'), { target: { value: 'ssh' } });
    expect(onapply).toHaveBeenCalledOnce();
    expect(onapply).toHaveBeenLastCalledWith({ ...DEFAULTS, kind: 'ssh' });
  });

  it('applies typing after a pause, once', async () => {
    vi.useFakeTimers();
    const { onapply } = filterBar();
    const input = screen.getByTestId('f-text');
    await fireEvent.input(input, { target: { value: 'we' } });
    await fireEvent.input(input, { target: { value: 'web' } });
    expect(onapply).not.toHaveBeenCalled();
    vi.advanceTimersByTime(TYPING_DELAY_MS);
    expect(onapply).toHaveBeenCalledOnce();
    expect(onapply).toHaveBeenLastCalledWith({ ...DEFAULTS, text: 'web' });
  });

  it('applies at once on Enter', async () => {
    vi.useFakeTimers();
    const { onapply } = filterBar();
    await fireEvent.input(screen.getByTestId('f-text'), { target: { value: 'db' } });
    await fireEvent.submit(screen.getByRole('form'));
    expect(onapply).toHaveBeenCalledOnce();
    vi.advanceTimersByTime(TYPING_DELAY_MS);
    expect(onapply).toHaveBeenCalledOnce(); // the pending one was dropped
  });

  it('clears back to the defaults and applies', async () => {
    const { onapply } = filterBar({ values: { ...DEFAULTS, kind: 'ssh', text: 'web' } });
    const clear = screen.getByTestId('f-clear');
    expect(clear.tagName).toBe('BUTTON');
    expect(clear.getAttribute('type')).toBe('button');
    await fireEvent.click(clear);
    expect(onapply).toHaveBeenLastCalledWith(DEFAULTS);
    expect((screen.getByTestId('f-kind') as HTMLSelectElement).value).toBe('');
    expect((screen.getByTestId('f-text') as HTMLInputElement).value).toBe('');
    expect(screen.queryByTestId('f-clear')).toBeNull();
  });

  it('says why the filters cannot apply, as an alert', () => {
    filterBar({ problem: 'The end of the time range is before its start.' });
    expect(screen.getByRole('alert').textContent).toContain('before its start');
  });
});

interface Thing {
  id: string;
  name: string;
}

describe('DataTable', () => {
  const row = createRawSnippet((thing: () => Thing) => ({
    render: () => `<tr data-testid="row-${thing().id}"><td>${thing().name}</td><td class="end"><button type="button">Open</button></td></tr>`,
  }));

  it('draws a captioned table with one row per item, in order', () => {
    render(DataTable<Thing>, {
      caption: 'Things, newest first',
      columns: [
        { id: 'name', label: 'Name' },
        { id: 'actions', label: 'Actions', srOnly: true, end: true },
      ],
      rows: [
        { id: 'b', name: 'Bee' },
        { id: 'a', name: 'Ant' },
      ],
      key: (t: Thing) => t.id,
      row,
      testid: 'things-table',
    });
    const table = screen.getByRole('table', { name: 'Things, newest first' });
    const headers = within(table).getAllByRole('columnheader');
    expect(headers.map((h) => h.textContent?.trim())).toEqual(['Name', 'Actions']);
    expect(headers.every((h) => h.getAttribute('scope') === 'col')).toBe(true);
    expect(headers[1]?.querySelector('.sr-only')?.textContent).toBe('Actions');
    expect(within(table).getAllByTestId(/^row-/).map((r) => r.dataset['testid'])).toEqual(['row-b', 'row-a']);
    expect(screen.getByTestId('things-table').getAttribute('aria-busy')).toBe('false');
  });

  it('says when it is reloading', () => {
    render(DataTable<Thing>, { caption: 'Things', columns: [{ id: 'name', label: 'Name' }], rows: [], key: (t: Thing) => t.id, row, busy: true, testid: 't' });
    expect(screen.getByTestId('t').getAttribute('aria-busy')).toBe('true');
  });
});

describe('Pager', () => {
  it('pages newer and older, and stops at the ends', async () => {
    const onpage = vi.fn();
    const { rerender } = render(Pager, { testid: 'p', noun: 'Records', offset: 0, count: 50, pageSize: 50, hasMore: true, onpage });
    expect(screen.getByRole('navigation', { name: 'Pages' }).textContent).toContain('Records 1–50');
    expect((screen.getByTestId('p-prev') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(screen.getByTestId('p-next'));
    expect(onpage).toHaveBeenLastCalledWith(50);
    await rerender({ offset: 50, count: 20, hasMore: false });
    expect((screen.getByTestId('p-next') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(screen.getByTestId('p-prev'));
    expect(onpage).toHaveBeenLastCalledWith(0);
  });

  it('waits while a page loads', () => {
    render(Pager, { testid: 'p', noun: 'Sessions', offset: 50, count: 10, pageSize: 50, hasMore: true, busy: true, onpage: () => {} });
    expect((screen.getByTestId('p-prev') as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByTestId('p-next') as HTMLButtonElement).disabled).toBe(true);
  });
});
