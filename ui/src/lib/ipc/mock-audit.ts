/**
 * The mock core's local audit trail: `audit_query`, `audit_verify` and `audit_export` over an
 * in-memory list, filtering roughly like the Rust side (newest first, AND of the set filters).
 */
import type { ApiError, AuditOutcome, AuditPage, AuditQueryInput, AuditRecordView, AuditVerifyView } from './bindings';
import { LIMITS } from './limits';

const MIN = 60_000;

function hashOf(seq: number): string {
  return (seq * 2654435761 >>> 0).toString(16).padStart(8, '0').repeat(8);
}

/** A record with defaults for what a test does not care about. */
export function mockAuditRecord(fields: Partial<AuditRecordView> & { seq: number }): AuditRecordView {
  return {
    time_ms: 1_767_000_000_000 + fields.seq * MIN,
    actor: 'ada',
    kind: 'grant.release',
    target: 'g-1',
    outcome: 'started',
    detail: '{}',
    hash: hashOf(fields.seq),
    prev_hash: hashOf(fields.seq - 1),
    ...fields,
  };
}

/** A small trail: a request (started, success), a release that failed, a login. */
export function defaultAuditRecords(now: number): AuditRecordView[] {
  const at = (minsAgo: number) => now - minsAgo * MIN;
  return [
    mockAuditRecord({ seq: 1, time_ms: at(26 * 60), kind: 'login', target: 'ada', actor: '-', detail: '{\n  "description": "Sign in as ada"\n}' }),
    mockAuditRecord({ seq: 2, time_ms: at(26 * 60), kind: 'login', target: 'ada', actor: '-', outcome: 'success', detail: '{\n  "started": 1\n}' }),
    mockAuditRecord({
      seq: 3,
      time_ms: at(3 * 60),
      kind: 'elevation.request',
      target: 'db-prod-1',
      detail: '{\n  "description": "Request dba on db-prod-1 for 1 h",\n  "text": {\n    "justification": "INC-4711 vacuum the orders table"\n  }\n}',
    }),
    mockAuditRecord({ seq: 4, time_ms: at(3 * 60), kind: 'elevation.request', target: 'db-prod-1', outcome: 'success', detail: '{\n  "started": 3\n}' }),
    mockAuditRecord({ seq: 5, time_ms: at(5), kind: 'grant.release', target: 'gr-1' }),
    mockAuditRecord({
      seq: 6,
      time_ms: at(5),
      kind: 'grant.release',
      target: 'gr-1',
      outcome: 'failure',
      detail: '{\n  "code": "broker_unreachable",\n  "started": 5\n}',
    }),
  ];
}

export interface AuditOptions {
  /** The local trail. Default: `defaultAuditRecords(Date.now())`. */
  auditRecords?: AuditRecordView[];
}

const OUTCOMES: readonly AuditOutcome[] = ['started', 'success', 'failure', 'denied'];

function bad(message: string): ApiError {
  return { code: 'bad_request', message };
}

function asInput(args: unknown): AuditQueryInput {
  const input = (args as { input?: unknown } | null)?.input;
  if (typeof input !== 'object' || input === null) throw bad('input: missing');
  const i = input as AuditQueryInput;
  if (typeof i.limit !== 'number' || typeof i.offset !== 'number') throw bad('input: limit and offset are numbers');
  if (i.outcome !== null && !OUTCOMES.includes(i.outcome)) throw bad('input.outcome: unknown');
  return i;
}

export class AuditModel {
  records: AuditRecordView[];
  /** When set, `audit_verify` reports this record as the first bad one. */
  tampered: { seq: number; reason: string } | null = null;
  /** When set, the next audit command rejects with it. */
  failure: unknown = undefined;

  constructor(options: AuditOptions) {
    this.records = structuredClone(options.auditRecords ?? defaultAuditRecords(Date.now()));
  }

  private matching(i: AuditQueryInput): AuditRecordView[] {
    const words = (i.text ?? '').toLowerCase().split(/\s+/).filter((w) => w !== '');
    const target = (i.target ?? '').toLowerCase();
    return this.records
      .filter(
        (r) =>
          (i.from_ms === null || r.time_ms >= i.from_ms) &&
          (i.until_ms === null || r.time_ms < i.until_ms) &&
          (i.kind === null || i.kind === '' || r.kind === i.kind) &&
          (target === '' || r.target.toLowerCase().includes(target)) &&
          (i.outcome === null || r.outcome === i.outcome) &&
          words.every((w) => r.detail.toLowerCase().includes(w)),
      )
      .sort((a, b) => b.time_ms - a.time_ms || b.seq - a.seq);
  }

  /** Answers an audit command, or `undefined` for any other command. */
  handle(cmd: string, args: unknown): unknown {
    if (cmd !== 'audit_query' && cmd !== 'audit_verify' && cmd !== 'audit_export') return undefined;
    if (this.failure !== undefined) {
      const f = this.failure;
      this.failure = undefined;
      throw f;
    }
    switch (cmd) {
      case 'audit_query': {
        const i = asInput(args);
        if (i.limit < 1 || i.limit > LIMITS.audit_page_max) throw bad(`limit: between 1 and ${LIMITS.audit_page_max}`);
        const all = this.matching(i);
        const page: AuditPage = {
          records: structuredClone(all.slice(i.offset, i.offset + i.limit)),
          offset: i.offset,
          has_more: all.length > i.offset + i.limit,
        };
        return page;
      }
      case 'audit_verify': {
        const last = this.records.reduce((m, r) => Math.max(m, r.seq), 0);
        const view: AuditVerifyView =
          this.tampered === null
            ? { ok: true, records: last, head_hash: hashOf(last), first_bad: null, problem: null }
            : { ok: false, records: this.tampered.seq - 1, head_hash: '', first_bad: { ...this.tampered }, problem: null };
        return view;
      }
      default: {
        const i = asInput(args);
        return this.matching(i)
          .reverse()
          .map((r) => `${JSON.stringify({ seq: r.seq, time_ms: r.time_ms, actor: r.actor, action: r.kind, subject: r.target, outcome: r.outcome })}\n`)
          .join('');
      }
    }
  }
}
