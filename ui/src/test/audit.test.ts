import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuditQueryInput, AuditRecordView } from '../lib/ipc';
import { mockAuditRecord } from '../lib/ipc/mock';
import { CONFIGURED, renderApp } from './helpers';

const ADA = { name: 'ada', roles: [] };

function rows(): HTMLElement[] {
  return screen.queryAllByTestId('audit-row');
}

function seqs(): number[] {
  return rows().map((r) => Number(r.dataset['seq']));
}

async function openAudit(records?: AuditRecordView[]) {
  const result = renderApp({ settings: CONFIGURED, user: ADA, ...(records ? { auditRecords: records } : {}) }, '#/audit');
  await screen.findByTestId('audit-page');
  await waitFor(() => expect(rows().length).toBeGreaterThan(0));
  return result;
}

function lastQuery(core: Awaited<ReturnType<typeof openAudit>>['core']): AuditQueryInput {
  const calls = core.calls.filter((c) => c.cmd === 'audit_query');
  return (calls[calls.length - 1]?.args as { input: AuditQueryInput }).input;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('audit page', () => {
  it('lists the local trail newest first and shows the chain verified', async () => {
    await openAudit();
    expect(seqs()).toEqual([6, 5, 4, 3, 2, 1]);
    const first = rows()[0];
    if (first === undefined) throw new Error('no row');
    expect(first.textContent).toContain('Grant released');
    expect(first.textContent).toContain('gr-1');
    expect(first.textContent).toContain('failure');
    const badge = screen.getByTestId('audit-verify-badge');
    await waitFor(() => expect(badge.dataset['state']).toBe('ok'));
    expect(badge.textContent).toContain('6 records');
    expect(screen.queryByTestId('audit-first-bad')).toBeNull();
  });

  it('filters by kind, outcome, target and justification text', async () => {
    const { core } = await openAudit();
    await fireEvent.change(screen.getByTestId('audit-filter-kind'), { target: { value: 'elevation.request' } });
    await waitFor(() => expect(seqs()).toEqual([4, 3]));
    expect(lastQuery(core).kind).toBe('elevation.request');

    await fireEvent.change(screen.getByTestId('audit-filter-outcome'), { target: { value: 'success' } });
    await waitFor(() => expect(seqs()).toEqual([4]));
    expect(lastQuery(core).outcome).toBe('success');

    await fireEvent.change(screen.getByTestId('audit-filter-kind'), { target: { value: '' } });
    await fireEvent.change(screen.getByTestId('audit-filter-outcome'), { target: { value: '' } });
    await waitFor(() => expect(seqs()).toHaveLength(6));

    await fireEvent.input(screen.getByTestId('audit-filter-target'), { target: { value: 'PROD' } });
    await waitFor(() => expect(seqs()).toEqual([4, 3]));
    expect(lastQuery(core).target).toBe('PROD');
    await fireEvent.input(screen.getByTestId('audit-filter-target'), { target: { value: '' } });

    await fireEvent.input(screen.getByTestId('audit-search'), { target: { value: 'vacuum orders' } });
    await waitFor(() => expect(seqs()).toEqual([3]));
    expect(lastQuery(core).text).toBe('vacuum orders');

    await fireEvent.input(screen.getByTestId('audit-search'), { target: { value: 'no such words' } });
    expect(await screen.findByTestId('audit-empty')).toBeTruthy();
  });

  it('applies a time preset as a from-time', async () => {
    const { core } = await openAudit();
    const before = Date.now();
    await fireEvent.change(screen.getByTestId('audit-filter-time'), { target: { value: '1h' } });
    await waitFor(() => expect(seqs()).toEqual([6, 5]));
    const q = lastQuery(core);
    expect(q.from_ms).toBeGreaterThanOrEqual(before - 3_600_000);
    expect(q.until_ms).toBeNull();
  });

  it('pages through the trail', async () => {
    const many = Array.from({ length: 120 }, (_, i) => mockAuditRecord({ seq: i + 1 }));
    const { core } = await openAudit(many);
    expect(rows()).toHaveLength(50);
    expect(seqs()[0]).toBe(120);
    const newer = screen.getByTestId<HTMLButtonElement>('audit-prev');
    expect(newer.disabled).toBe(true);
    await fireEvent.click(screen.getByTestId('audit-next'));
    await waitFor(() => expect(seqs()[0]).toBe(70));
    expect(lastQuery(core).offset).toBe(50);
    await fireEvent.click(screen.getByTestId('audit-next'));
    await waitFor(() => expect(seqs()).toHaveLength(20));
    expect(screen.getByTestId<HTMLButtonElement>('audit-next').disabled).toBe(true);
    await fireEvent.click(screen.getByTestId('audit-prev'));
    await waitFor(() => expect(seqs()[0]).toBe(70));
  });

  it('shows every field of a record in the detail view, as inert text', async () => {
    const hostile = '{\n  "justification": "<img src=x onerror=alert(1)> \\u{202e}evil"\n}';
    await openAudit([
      mockAuditRecord({ seq: 1, kind: 'break_glass', target: '<b>db</b>', actor: 'ada', detail: hostile, outcome: 'started' }),
    ]);
    const row = rows()[0];
    if (row === undefined) throw new Error('no row');
    const open = within(row).getByRole('button');
    open.focus();
    await fireEvent.click(open);
    const detail = await screen.findByTestId('audit-detail');
    expect(detail.textContent).toContain('Record #1');
    expect(detail.textContent).toContain('break_glass');
    expect(detail.textContent).toContain('<b>db</b>');
    expect(screen.getByTestId('audit-detail-text').textContent).toBe(hostile);
    expect(detail.querySelector('img')).toBeNull();
    expect(detail.querySelector('b')).toBeNull();
    expect(row.querySelector('b')).toBeNull();
    expect(open.getAttribute('aria-expanded')).toBe('true');
    await fireEvent.click(screen.getByTestId('audit-detail-close'));
    expect(screen.queryByTestId('audit-detail')).toBeNull();
  });

  it('shows a failed verification in red with the record named', async () => {
    const { core } = await openAudit();
    await waitFor(() => expect(screen.getByTestId('audit-verify-badge').dataset['state']).toBe('ok'));
    core.audit.tampered = { seq: 3, reason: 'its contents do not match its hash' };
    await fireEvent.click(screen.getByTestId('audit-verify'));
    const badge = screen.getByTestId('audit-verify-badge');
    await waitFor(() => expect(badge.dataset['state']).toBe('failed'));
    expect(badge.classList.contains('failed')).toBe(true);
    expect(screen.getByTestId('audit-first-bad').textContent).toBe(
      '✗ Verification FAILED at record #3: its contents do not match its hash',
    );
  });

  it('says why the trail cannot be read, and retries', async () => {
    const { core } = await openAudit();
    core.audit.failure = { code: 'audit_unavailable', message: 'the audit trail is corrupt: file is not a database' };
    await fireEvent.change(screen.getByTestId('audit-filter-kind'), { target: { value: 'login' } });
    const error = await screen.findByTestId('audit-error');
    expect(error.dataset['code']).toBe('audit_unavailable');
    expect(error.textContent).toContain('corrupt');
    await fireEvent.click(within(error).getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(seqs()).toEqual([2, 1]));
  });

  it('exports the filtered records as JSON lines through a download', async () => {
    const created: Blob[] = [];
    const createObjectURL = vi.fn((b: Blob) => {
      created.push(b);
      return 'blob:paw-audit';
    });
    const revokeObjectURL = vi.fn();
    Object.assign(URL, { createObjectURL, revokeObjectURL });
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(() => {});
    const { core } = await openAudit();
    await fireEvent.change(screen.getByTestId('audit-filter-kind'), { target: { value: 'elevation.request' } });
    await waitFor(() => expect(seqs()).toEqual([4, 3]));
    await fireEvent.click(screen.getByTestId('audit-export'));
    expect((await screen.findByTestId('audit-notice')).textContent).toBe('Exported 2 records as JSON lines.');
    const call = core.calls.find((c) => c.cmd === 'audit_export');
    expect((call?.args as { input: AuditQueryInput }).input.kind).toBe('elevation.request');
    // No path goes to the core: the text comes back and the web view saves it.
    expect(JSON.stringify(call?.args)).not.toMatch(/path|file/i);
    expect(click).toHaveBeenCalledOnce();
    const anchor = click.mock.instances[0] as unknown as HTMLAnchorElement;
    expect(anchor.download).toMatch(/^paw-audit-\d{8}-\d{4}\.jsonl$/);
    expect(revokeObjectURL).toHaveBeenCalledWith('blob:paw-audit');
    const text = await new Promise<string>((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result));
      reader.readAsText(created[0] as Blob);
    });
    expect(text.trimEnd().split('\n')).toHaveLength(2);
  });
});
