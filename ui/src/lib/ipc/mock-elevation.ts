/**
 * The elevation half of the fake core (see mock.ts): entitlements, requests, decisions,
 * grants with a broker clock of their own, break-glass reviews and the live event feed.
 *
 * It follows the broker's rules closely enough for the UI's paths to be exercised (the checks
 * run in the broker's order and refuse with the same codes), and no further: groups are not
 * modelled, so anyone but the requester may approve; who oversees (and may revoke) grants is
 * `ElevationOptions.approverOf` plus every administrator. Test and dev use only.
 */
import type {
  ApiError,
  DecisionView,
  EntitlementView,
  GrantList,
  GrantSummary,
  GrantView,
  Inbox,
  LiveEvent,
  LiveFeed,
  Purpose,
  StepUpPrompt,
} from './bindings';
import { LIMITS } from './limits';

/** An entitlement as the mock configures it: the view, plus how many approvals it needs. */
export type MockEntitlement = EntitlementView & { approvals_required: number };

export const AUTO_RULE = "approved automatically after the requester's security-key step-up";

export const MOCK_ENTITLEMENTS: readonly MockEntitlement[] = [
  {
    id: 'web-deploy',
    description: 'Restart services on the web tier',
    target_kind: 'ssh',
    target: 'web-*',
    role: 'deploy',
    max_duration_secs: 3600,
    rule: AUTO_RULE,
    auto_approve: true,
    ticket_pattern: null,
    break_glass_max_secs: null,
    commands: null,
    approvals_required: 0,
  },
  {
    id: 'db-prod-dba',
    description: 'Administer the production PostgreSQL databases',
    target_kind: 'postgres',
    target: 'db-prod-*',
    role: 'dba',
    max_duration_secs: 4 * 3600,
    rule:
      'needs 2 distinct approvers from dba-leads; the requester cannot approve; a ticket matching INC-* is required; ' +
      'break-glass allowed for up to 1 h; two other people must review it',
    auto_approve: false,
    ticket_pattern: 'INC-*',
    break_glass_max_secs: 3600,
    commands: null,
    approvals_required: 2,
  },
  {
    id: 'app-prod-root',
    description: 'Root on the production application servers',
    target_kind: 'ssh',
    target: 'app-prod-*',
    role: 'root',
    max_duration_secs: 2 * 3600,
    rule: 'needs 1 approver from sre-leads; the requester cannot approve',
    auto_approve: false,
    ticket_pattern: null,
    break_glass_max_secs: null,
    commands: {
      default: 'allow',
      strict: true,
      rules: [
        { matches: 'rm with -r -f', action: 'deny', reason: 'deleting trees is done by the release tool' },
        { matches: 'systemctl restart …', action: 'step_up', reason: null },
        { matches: 'shutdown', action: 'approve', reason: null },
      ],
    },
    approvals_required: 1,
  },
];

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** The broker warns a grant's holder this long before it ends (once each). */
const WARNINGS = [5 * MIN, MIN] as const;
const REVIEWS_NEEDED = LIMITS.break_glass_reviewers;

/** A grant with every field filled; `fields` override. Times are by the broker's clock. */
export function mockGrant(fields: Partial<GrantView> & { id: string; user: string }): GrantView {
  const entitlement = MOCK_ENTITLEMENTS.find((e) => e.id === (fields.entitlement ?? 'web-deploy')) ?? MOCK_ENTITLEMENTS[0];
  const created = fields.created_at_ms ?? 0;
  return {
    entitlement: entitlement?.id ?? 'web-deploy',
    target_kind: entitlement?.target_kind ?? 'ssh',
    target: 'web-1',
    role: entitlement?.role ?? 'deploy',
    duration_secs: 3600,
    justification: 'Restart the stuck nginx worker on web-1',
    ticket: null,
    break_glass: false,
    state: 'pending',
    created_at_ms: created,
    start_at_ms: null,
    starts_at_ms: null,
    ends_at_ms: null,
    ended_at_ms: null,
    end_reason: null,
    decisions: [],
    rule: entitlement?.rule ?? AUTO_RULE,
    approvals_missing: 0,
    reviewers: [],
    review_closed: false,
    ...fields,
  };
}

/**
 * Colleagues' requests, a break-glass use to review and someone's active grant to oversee, so the
 * approvals page has something to show.
 */
export function defaultGrants(now: number): GrantView[] {
  const db = MOCK_ENTITLEMENTS[1];
  const rule = db?.rule ?? '';
  return [
    mockGrant({
      id: 'gr-bob-3',
      user: 'bob',
      entitlement: 'db-prod-dba',
      target: 'db-prod-2',
      duration_secs: 3600,
      justification: 'INC-4711: vacuum the orders table after the bulk import',
      ticket: 'INC-4711',
      state: 'pending',
      created_at_ms: now - 6 * MIN,
      decisions: [{ approver: 'carol', approve: true, comment: 'Checked the ticket.', at_ms: now - 4 * MIN }],
      rule,
      approvals_missing: 1,
    }),
    mockGrant({
      id: 'gr-dave-1',
      user: 'dave',
      entitlement: 'app-prod-root',
      target: 'app-prod-3',
      duration_secs: 3600,
      justification: 'INC-4702: the payment worker leaks file handles, restart it by hand',
      state: 'active',
      created_at_ms: now - 25 * MIN,
      starts_at_ms: now - 20 * MIN,
      ends_at_ms: now + 40 * MIN,
      decisions: [{ approver: 'erin', approve: true, comment: '', at_ms: now - 20 * MIN }],
    }),
    mockGrant({
      id: 'gr-carol-1',
      user: 'carol',
      entitlement: 'db-prod-dba',
      target: 'db-prod-1',
      duration_secs: 1800,
      justification: 'Primary out of disk at 03:10, paging did not reach the DBA on call',
      break_glass: true,
      state: 'released',
      created_at_ms: now - 5 * HOUR,
      starts_at_ms: now - 5 * HOUR,
      ends_at_ms: now - 5 * HOUR + 30 * MIN,
      ended_at_ms: now - 5 * HOUR + 22 * MIN,
      end_reason: 'released by the requester',
      rule,
      reviewers: ['dave'],
    }),
    mockGrant({
      id: 'gr-bob-2',
      user: 'bob',
      entitlement: 'db-prod-dba',
      target: 'db-prod-2',
      duration_secs: 3600,
      justification: 'INC-4690: add an index for the slow report query',
      ticket: 'INC-4690',
      state: 'expired',
      created_at_ms: now - 2 * DAY,
      starts_at_ms: now - 2 * DAY + 20 * MIN,
      ends_at_ms: now - 2 * DAY + 80 * MIN,
      ended_at_ms: now - 2 * DAY + 80 * MIN,
      end_reason: 'expired',
      rule,
    }),
    mockGrant({
      id: 'gr-bob-1',
      user: 'bob',
      entitlement: 'web-deploy',
      target: 'web-3',
      state: 'released',
      created_at_ms: now - 3 * DAY,
      starts_at_ms: now - 3 * DAY,
      ends_at_ms: now - 3 * DAY + HOUR,
      ended_at_ms: now - 3 * DAY + 12 * MIN,
      end_reason: 'released by the requester',
    }),
  ];
}

export interface ElevationOptions {
  entitlements?: MockEntitlement[];
  /** Every grant the broker holds (all users), given the broker's time. Default: `defaultGrants`. */
  grants?: (now: number) => GrantView[];
  /** Broker clock minus the workstation clock, in ms. Default 0. */
  clockOffsetMs?: number;
  /** What `live_events` reports as `connected`. Default true. */
  liveConnected?: boolean;
  /**
   * Entitlements the signed-in user approves for: they oversee (and may revoke) their grants.
   * Administrators oversee every entitlement. Default: none.
   */
  approverOf?: string[];
}

function apiError(code: ApiError['code'], message: string): ApiError {
  return { code, message };
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

function str(value: unknown, key: string): string | null {
  const v = field(value, key);
  return typeof v === 'string' ? v : null;
}

/** The broker's anchored patterns: `*` stands for one or more characters within one DNS label. */
export function patternMatches(pattern: string, value: string): boolean {
  const source = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^.]+');
  return new RegExp(`^${source}$`).test(value);
}

/** paw-policy's `plain_duration`. */
export function plainDuration(secs: number): string {
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  const parts: string[] = [];
  if (h > 0) parts.push(`${h} h`);
  if (m > 0) parts.push(`${m} min`);
  if (s > 0 || parts.length === 0) parts.push(`${s} s`);
  return parts.join(' ');
}

/** paw-proto's `Action::describe` duration words. */
function actionDuration(secs: number): string {
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  if (h === 0) return `${m} min`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

type Checked =
  | { op: 'request'; entitlement: MockEntitlement; target: string; role: string; duration_secs: number; justification: string; ticket: string | null; start_at_ms: number | null }
  | { op: 'break_glass'; entitlement: MockEntitlement; target: string; role: string; duration_secs: number; justification: string }
  | { op: 'decide'; request_id: string; approve: boolean; comment: string };

/**
 * The broker side of elevation, held in memory. `me()` is the signed-in user (from the core);
 * `handle` answers the elevation commands, returning `undefined` for any other command.
 */
export class ElevationModel {
  entitlements: MockEntitlement[];
  /** All grants, newest first. */
  grants: GrantView[];
  /** Broker clock minus the workstation clock; change it to move the broker's time. */
  clockOffsetMs: number;
  liveConnected: boolean;
  /** Entitlements the signed-in user approves for (see `ElevationOptions.approverOf`). */
  approverOf: string[];
  /** Every live event, in order; `seq` counts from 1. */
  readonly events: { seq: number; event: LiveEvent }[] = [];
  /** Prepared elevation step-ups not yet confirmed or cancelled, by id. */
  readonly pending = new Map<string, { action: Checked; prompt: StepUpPrompt; at: number }>();
  /** When set, the next call of that command rejects with the value. */
  readonly failures = new Map<string, unknown>();
  /** `expires_in_secs` of the next elevation prompts. */
  stepUpExpiresInSecs = 60;

  private readonly epoch: number;
  private readonly perf: number;
  private readonly warned = new Map<string, number>();
  private nextId = 1;
  private nextPrompt = 1;

  constructor(
    private readonly me: () => string | null,
    private readonly isAdmin: () => boolean,
    options: ElevationOptions = {},
  ) {
    this.epoch = Date.now();
    this.perf = performance.now();
    this.clockOffsetMs = options.clockOffsetMs ?? 0;
    this.liveConnected = options.liveConnected ?? true;
    this.approverOf = [...(options.approverOf ?? [])];
    this.entitlements = structuredClone(options.entitlements ?? [...MOCK_ENTITLEMENTS]);
    const now = this.now();
    this.grants = structuredClone((options.grants ?? defaultGrants)(now));
    for (const g of this.grants) {
      // Seeded grants close to their end were already warned about (no burst of old warnings).
      if (g.state === 'active' && g.ends_at_ms !== null) {
        this.warned.set(g.id, WARNINGS.filter((w) => g.ends_at_ms !== null && g.ends_at_ms - now <= w).length);
      }
    }
  }

  /** The broker's clock: monotonic from install, shifted by `clockOffsetMs`. */
  now(): number {
    return Math.round(this.epoch + this.clockOffsetMs + (performance.now() - this.perf));
  }

  /** Rejects the next call of `cmd` with `failure` (any shape, to test normalisation). */
  failNext(cmd: string, failure: unknown): void {
    this.failures.set(cmd, failure);
  }

  grant(id: string): GrantView {
    const grant = this.grants.find((g) => g.id === id);
    if (grant === undefined) throw apiError('not_found', 'no such request or grant');
    return grant;
  }

  /** Appends a live event, as the broker's feed would deliver it to this user. */
  emit(kind: string, grant: GrantView, message: string): void {
    this.events.push({
      seq: this.events.length + 1,
      event: { kind, grant_id: grant.id, state: grant.state, message, at_ms: this.now() },
    });
  }

  /** Appends a live event that is not about a grant's own state (e.g. a held command), stamped now. */
  emitEvent(event: Omit<LiveEvent, 'at_ms'>): void {
    this.events.push({ seq: this.events.length + 1, event: { ...event, at_ms: this.now() } });
  }

  /** Moves grants along the clock: approved → active at their start, active → expired at their end, warnings. */
  tick(): void {
    const now = this.now();
    for (const g of this.grants) {
      if (g.state === 'approved' && g.starts_at_ms !== null && g.starts_at_ms <= now) {
        g.state = 'active';
        if (g.user === this.me()) this.emit('grant_started', g, `${g.role} on ${g.target} is active`);
      }
      if (g.state !== 'active' || g.ends_at_ms === null) continue;
      if (g.ends_at_ms <= now) {
        g.state = 'expired';
        g.ended_at_ms = g.ends_at_ms;
        g.end_reason = 'expired';
        if (g.user === this.me()) this.emit('grant_ended', g, `${g.role} on ${g.target} has expired`);
        continue;
      }
      const done = this.warned.get(g.id) ?? 0;
      const due = WARNINGS.filter((w) => g.ends_at_ms !== null && g.ends_at_ms - now <= w).length;
      if (due > done) {
        this.warned.set(g.id, due);
        if (g.user === this.me()) {
          const mins = Math.ceil((g.ends_at_ms - now) / MIN);
          this.emit('grant_warning', g, `${g.role} on ${g.target} ends in ${mins} min`);
        }
      }
    }
  }

  /** Active grant of the user ending first, as `app_status` reports it. */
  summary(): GrantSummary | null {
    this.tick();
    const me = this.me();
    const now = this.now();
    const active = this.grants
      .filter((g) => g.user === me && g.state === 'active' && g.ends_at_ms !== null)
      .sort((a, b) => (a.ends_at_ms ?? 0) - (b.ends_at_ms ?? 0))[0];
    if (active === undefined || active.ends_at_ms === null) return null;
    return { id: active.id, target: active.target, role: active.role, remaining_ms: Math.max(0, active.ends_at_ms - now) };
  }

  /** A colleague asks for an entitlement (no step-up modelled): a pending request in the inbox. */
  requestAs(user: string, fields: Partial<GrantView> = {}): GrantView {
    const entitlement = this.entitlement(fields.entitlement ?? 'db-prod-dba');
    const grant = mockGrant({
      id: `gr-${this.nextId++}`,
      user,
      entitlement: entitlement.id,
      target_kind: entitlement.target_kind,
      role: entitlement.role,
      rule: entitlement.rule,
      target: 'db-prod-3',
      justification: 'INC-4801: rebuild the bloated invoices index',
      ticket: entitlement.ticket_pattern === null ? null : 'INC-4801',
      created_at_ms: this.now(),
      approvals_missing: entitlement.approvals_required,
      ...fields,
    });
    this.grants.unshift(grant);
    this.emit('request_new', grant, `${user} asks for ${grant.role} on ${grant.target} for ${grant.duration_secs / 60} min`);
    return structuredClone(grant);
  }

  /** A colleague decides on a request (as the broker would after their step-up). */
  decideAs(approver: string, id: string, approve: boolean, comment = ''): GrantView {
    const grant = this.grant(id);
    this.decide(grant, approver, approve, comment);
    return structuredClone(grant);
  }

  /** Another person closes their review of a break-glass use. */
  reviewAs(reviewer: string, id: string): GrantView {
    const grant = this.grant(id);
    this.review(grant, reviewer);
    return structuredClone(grant);
  }

  /** Answers an elevation command; `undefined` when `cmd` is not one. */
  handle(cmd: string, args: unknown, requireUser: () => string): unknown {
    if (!ELEVATION_COMMANDS.has(cmd)) return undefined;
    const failure = this.failures.get(cmd);
    if (failure !== undefined) {
      this.failures.delete(cmd);
      throw failure;
    }
    this.tick();
    switch (cmd) {
      case 'list_entitlements':
        requireUser();
        return { entitlements: this.entitlements.map(({ approvals_required: _, ...view }) => structuredClone(view)) };
      case 'list_grants': {
        const me = requireUser();
        const list: GrantList = { grants: structuredClone(this.grants.filter((g) => g.user === me)), now_ms: this.now() };
        return list;
      }
      case 'approvals_inbox':
        return this.inbox(requireUser());
      case 'list_oversight':
        return this.oversight(requireUser());
      case 'cancel_request': {
        const me = requireUser();
        const grant = this.own(me, field(args, 'id'));
        if (grant.state !== 'pending' && grant.state !== 'approved') {
          throw apiError('conflict', `a ${grant.state} grant cannot be cancelled`);
        }
        this.end(grant, 'cancelled', 'cancelled by the requester');
        this.emit('grant_ended', grant, `your request for ${grant.role} on ${grant.target} was cancelled`);
        return structuredClone(grant);
      }
      case 'release_grant': {
        const me = requireUser();
        const grant = this.own(me, field(args, 'id'));
        if (grant.state !== 'active') throw apiError('conflict', `a ${grant.state} grant cannot be released`);
        this.end(grant, 'released', 'released by the requester');
        this.emit('grant_ended', grant, `${grant.role} on ${grant.target} was released`);
        return structuredClone(grant);
      }
      case 'revoke_grant': {
        const me = requireUser();
        const input = field(args, 'input');
        const grant = this.grant(str(input, 'id') ?? '');
        if (!this.oversees(grant)) {
          throw apiError('forbidden', 'only an approver of this entitlement or an admin can revoke');
        }
        const reason = str(input, 'reason') ?? '';
        if (reason.trim() === '') throw apiError('bad_request', 'a reason is required to revoke a grant');
        checkComment(reason);
        if (grant.state !== 'active' && grant.state !== 'approved') {
          throw apiError('conflict', `a ${grant.state} grant cannot be revoked`);
        }
        this.end(grant, 'revoked', `revoked by ${me}: ${reason}`);
        return structuredClone(grant);
      }
      case 'close_review': {
        const me = requireUser();
        const input = field(args, 'input');
        const grant = this.grant(str(input, 'id') ?? '');
        const comment = str(input, 'comment') ?? '';
        if (comment.trim() === '') throw apiError('bad_request', 'a comment is required to close a review');
        checkComment(comment);
        this.review(grant, me);
        return structuredClone(grant);
      }
      case 'live_events': {
        requireUser();
        const since = field(args, 'since');
        if (typeof since !== 'number') throw apiError('bad_request', 'expected { since: number }');
        const feed: LiveFeed = {
          seq: this.events.length,
          events: this.events.filter((e) => e.seq > since).map((e) => structuredClone(e.event)),
          connected: this.liveConnected,
        };
        return feed;
      }
      case 'prepare_elevation': {
        const me = requireUser();
        const action = this.check(me, field(args, 'action'));
        const prompt: StepUpPrompt = {
          id: `el-${this.nextPrompt++}`,
          purpose: PURPOSE[action.op],
          description: this.describe(action),
          action_hash: fakeHash(JSON.stringify(action)),
          expires_in_secs: this.stepUpExpiresInSecs,
        };
        this.pending.set(prompt.id, { action, prompt, at: performance.now() });
        return structuredClone(prompt);
      }
      case 'confirm_elevation': {
        const me = requireUser();
        const id = field(args, 'id');
        const pending = typeof id === 'string' ? this.pending.get(id) : undefined;
        if (pending === undefined) throw apiError('challenge_invalid', 'unknown or used step-up');
        this.pending.delete(pending.prompt.id);
        if (performance.now() - pending.at > pending.prompt.expires_in_secs * 1000) {
          throw apiError('challenge_invalid', 'the step-up challenge expired');
        }
        return structuredClone(this.perform(me, pending.action));
      }
      default:
        return undefined;
    }
  }

  private entitlement(id: unknown): MockEntitlement {
    const entitlement = this.entitlements.find((e) => e.id === id);
    if (entitlement === undefined) throw apiError('not_found', 'no such entitlement');
    return entitlement;
  }

  private own(me: string, id: unknown): GrantView {
    const grant = this.grants.find((g) => g.id === id && g.user === me);
    if (grant === undefined) throw apiError('not_found', 'no such request or grant of yours');
    return grant;
  }

  private inbox(me: string): Inbox {
    const requests = this.grants
      .filter((g) => g.state === 'pending' && g.user !== me && !g.decisions.some((d) => d.approver === me))
      .map((request) => ({
        request: structuredClone(request),
        requester_recent: structuredClone(
          this.grants.filter((g) => g.user === request.user && g.id !== request.id).slice(0, 5),
        ),
        // Separation of duties alone: the quorum and who may not approve.
        rule: request.rule.split('; ').slice(0, 2).join('; '),
      }));
    const reviews = structuredClone(
      this.grants.filter(
        (g) => g.break_glass && g.user !== me && !g.review_closed && !g.reviewers.includes(me) && g.state !== 'pending',
      ),
    );
    return { requests, reviews, now_ms: this.now() };
  }

  /** Whether the signed-in user may revoke `grant`: the broker's rule in `revoke`. */
  private oversees(grant: GrantView): boolean {
    return this.isAdmin() || this.approverOf.includes(grant.entitlement);
  }

  /** Other people's approved or active grants the user may revoke, newest first (broker: at most 200). */
  private oversight(me: string): GrantList {
    const grants = this.grants
      .filter((g) => g.user !== me && (g.state === 'approved' || g.state === 'active') && this.oversees(g))
      .sort((a, b) => b.created_at_ms - a.created_at_ms)
      .slice(0, 200);
    return { grants: structuredClone(grants), now_ms: this.now() };
  }

  /** The broker's checks, in its order (paw-policy `check_request`), before anything is signed. */
  private check(me: string, action: unknown): Checked {
    const op = str(action, 'op');
    if (op === 'decide') {
      const request_id = str(action, 'request_id') ?? '';
      const approve = field(action, 'approve');
      const comment = str(action, 'comment') ?? '';
      if (typeof approve !== 'boolean') throw apiError('bad_request', 'expected approve: boolean');
      const grant = this.grant(request_id);
      this.checkDecision(grant, me, approve, comment);
      return { op, request_id, approve, comment };
    }
    if (op !== 'request' && op !== 'break_glass') {
      throw apiError('bad_request', 'expected { action: { op: "request" | "decide" | "break_glass", … } }');
    }
    const entitlement = this.entitlement(str(action, 'entitlement'));
    const target = str(action, 'target') ?? '';
    const role = str(action, 'role') ?? '';
    const duration = field(action, 'duration_secs');
    const justification = str(action, 'justification') ?? '';
    if ([...target].length > LIMITS.target_name_max_chars || !patternMatches(entitlement.target, target)) {
      throw apiError('forbidden', 'the target is not covered by this entitlement');
    }
    if (role !== entitlement.role) throw apiError('forbidden', 'the role is not the one this entitlement grants');
    if (op === 'break_glass' && entitlement.break_glass_max_secs === null) {
      throw apiError('forbidden', 'this entitlement does not allow break-glass');
    }
    const max = op === 'break_glass' ? (entitlement.break_glass_max_secs ?? 0) : entitlement.max_duration_secs;
    if (typeof duration !== 'number' || !Number.isInteger(duration)) throw apiError('bad_request', 'expected duration_secs: integer');
    if (duration <= 0) throw apiError('bad_request', `duration must be positive, got ${duration} s`);
    if (duration > max) throw apiError('bad_request', `duration ${duration} s exceeds the maximum of ${max} s`);
    checkJustification(justification);
    if (op === 'break_glass') return { op, entitlement, target, role, duration_secs: duration, justification };
    const ticket = field(action, 'ticket');
    if (ticket !== null && typeof ticket !== 'string') throw apiError('bad_request', 'expected ticket: string | null');
    if (ticket === null && entitlement.ticket_pattern !== null) {
      throw apiError('bad_request', 'this entitlement requires a ticket');
    }
    if (ticket !== null && entitlement.ticket_pattern !== null && !patternMatches(entitlement.ticket_pattern, ticket)) {
      throw apiError('bad_request', `the ticket does not match the required form ${entitlement.ticket_pattern}`);
    }
    const start = field(action, 'start_at_ms');
    if (start !== null && typeof start !== 'number') throw apiError('bad_request', 'expected start_at_ms: number | null');
    if (start !== null && start < this.now() - MIN) throw apiError('bad_request', 'the start time is in the past');
    return { op, entitlement, target, role, duration_secs: duration, justification, ticket, start_at_ms: start };
  }

  private checkDecision(grant: GrantView, me: string, approve: boolean, comment: string): void {
    const entitlement = this.entitlements.find((e) => e.id === grant.entitlement);
    if (entitlement?.auto_approve === true) {
      throw apiError('forbidden', 'this entitlement is approved automatically; nobody approves its requests');
    }
    if (grant.user === me) throw apiError('forbidden', 'the requester cannot approve their own request');
    if (grant.state !== 'pending') throw apiError('conflict', `this request is ${grant.state}, no longer pending`);
    if (grant.decisions.some((d) => d.approver === me)) throw apiError('conflict', 'you already decided on this request');
    if (!approve && comment.trim() === '') throw apiError('bad_request', 'a comment is required to deny a request');
    checkComment(comment);
  }

  private describe(action: Checked): string {
    switch (action.op) {
      case 'request':
        return `Request ${action.role} on ${action.target} for ${actionDuration(action.duration_secs)}${
          action.ticket === null ? '' : ` (ticket ${action.ticket})`
        }. Reason: ${action.justification}`;
      case 'decide':
        return `${action.approve ? 'Approve' : 'Deny'} request ${action.request_id}`;
      case 'break_glass':
        return `BREAK GLASS: ${action.role} on ${action.target} for ${actionDuration(action.duration_secs)} without approval. Reason: ${action.justification}`;
    }
  }

  private perform(me: string, action: Checked): GrantView {
    const now = this.now();
    if (action.op === 'decide') {
      const grant = this.grant(action.request_id);
      this.checkDecision(grant, me, action.approve, action.comment); // the state may have moved on
      this.decide(grant, me, action.approve, action.comment);
      return grant;
    }
    const { entitlement } = action;
    const grant = mockGrant({
      id: `gr-${this.nextId++}`,
      user: me,
      entitlement: entitlement.id,
      target_kind: entitlement.target_kind,
      target: action.target,
      role: action.role,
      duration_secs: action.duration_secs,
      justification: action.justification,
      ticket: action.op === 'request' ? action.ticket : null,
      break_glass: action.op === 'break_glass',
      created_at_ms: now,
      start_at_ms: action.op === 'request' ? action.start_at_ms : null,
      rule: entitlement.rule,
      approvals_missing: action.op === 'request' && !entitlement.auto_approve ? entitlement.approvals_required : 0,
    });
    this.grants.unshift(grant);
    if (action.op === 'break_glass') {
      this.activate(grant, now);
      this.emit(
        'break_glass',
        grant,
        `BREAK-GLASS: ${me} took ${grant.role} on ${grant.target} for ${grant.duration_secs / 60} min: ${grant.justification}`,
      );
    } else if (entitlement.auto_approve) {
      this.activate(grant, now);
      this.announceStart(grant);
    }
    return grant;
  }

  /** Approved: active now, or at the requested start. */
  private activate(grant: GrantView, now: number): void {
    const start = grant.start_at_ms !== null && grant.start_at_ms > now ? grant.start_at_ms : now;
    grant.state = start > now ? 'approved' : 'active';
    grant.approvals_missing = 0;
    grant.starts_at_ms = start;
    grant.ends_at_ms = start + grant.duration_secs * 1000;
  }

  private announceStart(grant: GrantView): void {
    if (grant.state === 'active' && grant.user === this.me() && !grant.break_glass) {
      this.emit('grant_started', grant, `${grant.role} on ${grant.target} is active`);
    }
  }

  private decide(grant: GrantView, approver: string, approve: boolean, comment: string): void {
    const now = this.now();
    const decision: DecisionView = { approver, approve, comment, at_ms: now };
    grant.decisions.push(decision);
    const mine = grant.user === this.me();
    if (!approve) {
      this.end(grant, 'denied', `denied by ${approver}: ${comment}`);
    } else {
      grant.approvals_missing = Math.max(0, grant.approvals_missing - 1);
      if (grant.approvals_missing === 0) this.activate(grant, now);
    }
    if (mine) {
      this.emit(
        'request_decided',
        grant,
        `${approver} ${approve ? 'approved' : 'denied'} your request for ${grant.role} on ${grant.target}`,
      );
    }
    if (approve) this.announceStart(grant);
  }

  private review(grant: GrantView, reviewer: string): void {
    if (!grant.break_glass) throw apiError('bad_request', 'only break-glass uses are reviewed');
    if (grant.user === reviewer) throw apiError('forbidden', 'the person who used break-glass cannot review that use');
    if (grant.review_closed) throw apiError('conflict', 'this review is already closed');
    if (grant.reviewers.includes(reviewer)) throw apiError('conflict', 'you already reviewed this use');
    grant.reviewers.push(reviewer);
    if (grant.reviewers.length >= REVIEWS_NEEDED) {
      grant.review_closed = true;
      this.emit('review_closed', grant, 'break-glass review closed');
    }
  }

  private end(grant: GrantView, state: string, why: string): void {
    grant.state = state;
    grant.ended_at_ms = this.now();
    grant.end_reason = why;
    grant.approvals_missing = 0;
  }
}

const PURPOSE: Record<Checked['op'], Purpose> = { request: 'request', decide: 'approve', break_glass: 'break_glass' };

export const ELEVATION_COMMANDS: ReadonlySet<string> = new Set([
  'list_entitlements',
  'list_grants',
  'approvals_inbox',
  'list_oversight',
  'prepare_elevation',
  'confirm_elevation',
  'cancel_request',
  'release_grant',
  'revoke_grant',
  'close_review',
  'live_events',
]);

/** paw-policy: one line, nothing invisible, never trimmed, within the justification limits. */
function checkJustification(text: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text)) throw apiError('bad_request', 'justification must be one line of visible text');
  if (/^\s|\s$/.test(text)) throw apiError('bad_request', 'justification must not start or end with a space');
  const chars = [...text].length;
  const { justification_min_chars: min, justification_max_chars: max } = LIMITS;
  if (chars < min) throw apiError('bad_request', `justification has ${chars} characters; at least ${min} are required`);
  if (chars > max) throw apiError('bad_request', `justification has ${chars} characters; at most ${max} are allowed`);
}

/** The broker's rule for comments, revocation reasons and review notes: one line, bounded. */
function checkComment(text: string): void {
  // eslint-disable-next-line no-control-regex
  if ([...text].length > LIMITS.comment_max_chars || /[\u0000-\u001f\u007f]/.test(text)) {
    throw apiError('bad_request', `a comment is at most ${LIMITS.comment_max_chars} characters on one line`);
  }
}

export function fakeHash(text: string): string {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  let out = '';
  for (let i = 0; i < 8; i++) {
    h = Math.imul(h ^ (h >>> 15), 2246822519) >>> 0;
    out += h.toString(16).padStart(8, '0');
  }
  return out;
}
