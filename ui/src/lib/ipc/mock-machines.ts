/**
 * The machine-identity half of the fake core (see mock.ts): the broker's inventory (what an
 * administrator sees, and what an owner sees of it), creating a machine and handing one to a
 * new owner behind a step-up, and disabling an owner (the machine is suspended, `owner_missing`).
 *
 * Validation is rough, like the rest of the mock: enough to exercise the page's error paths.
 * The join token of a created key machine is made up here and returned once; the mock keeps no
 * copy, as the core keeps none. Test and dev use only.
 */
import type {
  ApiError,
  MachineCreated,
  MachineInventory,
  MachineKeyView,
  MachineSpec,
  MachineView,
  StepUpPrompt,
} from './bindings';
import { fakeHash, type ElevationModel } from './mock-elevation';

export interface MachineOptions {
  /** The broker's machines when the mock starts, given its time. Default `defaultMachines`. */
  machines?: (now: number) => MachineView[];
  /** People who may own a machine (active, not machines). Default ada, bob, carol, dave. */
  people?: string[];
  /** A join token's life, in seconds. Default 3600. */
  joinTokenSecs?: number;
}

const DAY = 86_400_000;
const NAME = /^[A-Za-z0-9._@-]{1,64}$/;

function apiError(code: ApiError['code'], message: string): ApiError {
  return { code, message };
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** A machine with every field filled; `fields` override. Times are by the broker's clock. */
export function mockMachine(fields: Partial<MachineView> & { name: string }, now = Date.now()): MachineView {
  return {
    owner: 'bob',
    backup_owner: null,
    purpose: 'Deploys the payments app',
    environment: 'prod',
    labels: {},
    auth_kind: 'key',
    oidc_issuer: null,
    oidc_claims: {},
    sources: [],
    created_at_ms: now - 40 * DAY,
    expires_at_ms: null,
    suspended_at_ms: null,
    suspended_reason: null,
    last_used_at_ms: now - 2 * 3_600_000,
    last_source: '10.20.4.17',
    credential_age_days: 40,
    keys: [],
    open_grants: 0,
    flags: [],
    ...fields,
  };
}

/** A registered key of a machine, `ageDays` old. */
export function mockMachineKey(now: number, ageDays: number, fields: Partial<MachineKeyView> = {}): MachineKeyView {
  return {
    public_key: fakeHash(`key:${ageDays}:${fields.source ?? 'key'}`).slice(0, 43),
    source: 'key',
    created_at_ms: now - ageDays * DAY,
    retires_at_ms: null,
    last_used_at_ms: now - 2 * 3_600_000,
    ...fields,
  };
}

/** A small inventory: a healthy key machine, a pipeline with flags, a suspended one. */
export function defaultMachines(now: number): MachineView[] {
  return [
    mockMachine(
      {
        name: 'deploy-bot',
        owner: 'bob',
        backup_owner: 'group:sre',
        labels: { team: 'payments', tier: '1' },
        sources: ['10.20.0.0/16'],
        keys: [
          mockMachineKey(now, 12),
          mockMachineKey(now, 103, { retires_at_ms: now - 90 * DAY, last_used_at_ms: now - 91 * DAY }),
        ],
        credential_age_days: 12,
        open_grants: 1,
      },
      now,
    ),
    mockMachine(
      {
        name: 'ci-release',
        owner: 'carol',
        purpose: 'Release pipeline of acme/app',
        environment: 'staging',
        auth_kind: 'oidc',
        oidc_issuer: 'https://token.actions.githubusercontent.com',
        oidc_claims: { repository: 'acme/app', ref: 'refs/heads/main' },
        last_source: '198.51.100.23',
        credential_age_days: null,
        keys: [mockMachineKey(now, 0, { source: 'session', retires_at_ms: now + 40 * 60_000 })],
        flags: [
          { code: 'new_source', detail: 'logged in from a new source (198.51.100.23)', audit_seq: 4182 },
          { code: 'standing_privilege', detail: 'grants back to back for 30 h', audit_seq: null },
        ],
      },
      now,
    ),
    mockMachine(
      {
        name: 'backup-cron',
        owner: null,
        purpose: 'Nightly database backups',
        environment: 'prod',
        suspended_at_ms: now - 3 * DAY,
        suspended_reason: 'owner dave disabled by pawd (cli)',
        last_used_at_ms: now - 3 * DAY,
        last_source: '10.20.9.2',
        credential_age_days: 120,
        keys: [mockMachineKey(now, 120)],
        flags: [
          { code: 'owner_missing', detail: 'no accountable owner; suspended until an admin assigns one', audit_seq: null },
          { code: 'suspended', detail: 'suspended: owner dave disabled by pawd (cli)', audit_seq: null },
          { code: 'key_not_rotated', detail: 'newest key is 120 days old', audit_seq: null },
        ],
      },
      now,
    ),
  ];
}

export const MACHINE_COMMANDS: ReadonlySet<string> = new Set([
  'list_machines',
  'prepare_create_machine',
  'confirm_create_machine',
  'prepare_transfer_machine',
  'confirm_transfer_machine',
]);

/** Commands of this model that use the security key. */
export const MACHINE_KEY_COMMANDS: readonly string[] = ['confirm_create_machine', 'confirm_transfer_machine'];

type Prepared =
  | { op: 'create'; spec: MachineSpec; prompt: StepUpPrompt; at: number }
  | { op: 'transfer'; machine: string; owner: string; prompt: StepUpPrompt; at: number };

export class MachineModel {
  /** Every machine the broker keeps. */
  machines: MachineView[];
  people: string[];
  joinTokenSecs: number;
  /** Prepared machine step-ups not yet confirmed or cancelled, by id. */
  readonly pending = new Map<string, Prepared>();
  /** When set, the next call of that command rejects with the value. */
  readonly failures = new Map<string, unknown>();
  /** How many join tokens were handed out (the tokens themselves are not kept). */
  tokensIssued = 0;
  private nextId = 1;

  constructor(
    private readonly elevation: ElevationModel,
    private readonly isAdmin: () => boolean,
    options: MachineOptions = {},
  ) {
    this.machines = structuredClone((options.machines ?? defaultMachines)(elevation.now()));
    this.people = [...(options.people ?? ['ada', 'bob', 'carol', 'dave'])];
    this.joinTokenSecs = options.joinTokenSecs ?? 3600;
  }

  failNext(cmd: string, failure: unknown): void {
    this.failures.set(cmd, failure);
  }

  /** `pawd user disable`: the person's machines are suspended and lose their owner. */
  disableOwner(person: string): void {
    const now = this.elevation.now();
    this.people = this.people.filter((p) => p !== person);
    for (const m of this.machines.filter((x) => x.owner === person)) {
      m.owner = null;
      m.open_grants = 0;
      m.suspended_at_ms = now;
      m.suspended_reason = `owner ${person} disabled by pawd (cli)`;
      m.flags = [
        { code: 'owner_missing', detail: 'no accountable owner; suspended until an admin assigns one', audit_seq: null },
        { code: 'suspended', detail: `suspended: ${m.suspended_reason}`, audit_seq: null },
        ...m.flags.filter((f) => f.code !== 'owner_missing' && f.code !== 'suspended'),
      ];
    }
  }

  /** Answers a machine command; `undefined` when `cmd` is not one. */
  handle(cmd: string, args: unknown, requireUser: () => string): unknown {
    if (!MACHINE_COMMANDS.has(cmd)) return undefined;
    const failure = this.failures.get(cmd);
    if (failure !== undefined) {
      this.failures.delete(cmd);
      throw failure;
    }
    const me = requireUser();
    switch (cmd) {
      case 'list_machines': {
        const inventory: MachineInventory = { machines: structuredClone(this.visible(me)), now_ms: this.elevation.now() };
        return inventory;
      }
      case 'prepare_create_machine': {
        const spec = this.checkSpec(field(args, 'spec'));
        const hash = fakeHash(JSON.stringify(spec));
        const prompt: StepUpPrompt = {
          id: `mc-${this.nextId++}`,
          purpose: 'manage_machine',
          description: [
            `Create machine identity ${spec.name} owned by ${spec.owner} (spec ${hash.slice(0, 12)})`,
            `Purpose: ${spec.purpose}`,
            `Environment: ${spec.environment}`,
            spec.auth.kind === 'key'
              ? 'Logs in with a key pair, registered with a single-use join token shown once'
              : `Logs in with OIDC workload tokens from ${spec.auth.issuer}`,
          ].join('\n'),
          action_hash: hash,
          expires_in_secs: 60,
        };
        this.pending.set(prompt.id, { op: 'create', spec, prompt, at: performance.now() });
        return structuredClone(prompt);
      }
      case 'confirm_create_machine': {
        const input = field(args, 'input');
        const pending = this.take(field(input, 'id'), 'create');
        if (pending.op !== 'create') throw apiError('challenge_invalid', 'unknown or used step-up');
        if (JSON.stringify(field(input, 'spec')) !== JSON.stringify(pending.spec)) {
          throw apiError('bad_request', 'spec: this is not the machine the confirmation was prepared for; start again');
        }
        this.requireAdmin('creating a machine identity');
        const spec = pending.spec;
        if (this.machines.some((m) => m.name === spec.name) || this.people.includes(spec.name)) {
          throw apiError('conflict', `a user or machine named ${spec.name} exists already`);
        }
        if (!this.people.includes(spec.owner)) throw apiError('bad_request', `owner: no user ${spec.owner}`);
        const now = this.elevation.now();
        const machine: MachineView = mockMachine(
          {
            name: spec.name,
            owner: spec.owner,
            backup_owner: spec.backup_owner,
            purpose: spec.purpose,
            environment: spec.environment,
            labels: { ...spec.labels },
            auth_kind: spec.auth.kind,
            oidc_issuer: spec.auth.kind === 'oidc' ? spec.auth.issuer : null,
            oidc_claims: spec.auth.kind === 'oidc' ? { ...spec.auth.claims } : {},
            sources: [...spec.sources],
            created_at_ms: now,
            expires_at_ms: spec.expires_at_ms,
            last_used_at_ms: null,
            last_source: null,
            credential_age_days: null,
          },
          now,
        );
        this.machines.push(machine);
        const created: MachineCreated = { machine: structuredClone(machine), join: null };
        if (spec.auth.kind === 'key') {
          this.tokensIssued += 1;
          created.join = {
            token: `pawjoin-${fakeHash(`${spec.name}:${now}:${this.tokensIssued}`).slice(0, 32)}`,
            expires_at_ms: now + this.joinTokenSecs * 1000,
            expires_in_ms: this.joinTokenSecs * 1000,
          };
        }
        return created;
      }
      case 'prepare_transfer_machine': {
        const input = field(args, 'input');
        const machine = field(input, 'machine');
        const owner = field(input, 'owner');
        if (typeof machine !== 'string' || !NAME.test(machine)) throw apiError('bad_request', 'machine: not a machine name');
        if (typeof owner !== 'string' || !NAME.test(owner)) {
          throw apiError('bad_request', "owner: 1–64 characters of a-z, A-Z, 0-9, '.', '_', '-', '@'");
        }
        const m = this.visible(me).find((x) => x.name === machine);
        if (m === undefined) throw apiError('bad_request', 'machine: no such machine among those you may see');
        if (m.owner === owner) throw apiError('bad_request', `owner: ${owner} owns this machine already`);
        const prompt: StepUpPrompt = {
          id: `mt-${this.nextId++}`,
          purpose: 'manage_machine',
          description: `Make ${owner} the owner of machine ${machine}\n${m.name} (${m.environment}, ${m.purpose}); owner now: ${m.owner ?? 'none'}`,
          action_hash: fakeHash(`transfer:${machine}:${owner}`),
          expires_in_secs: 60,
        };
        this.pending.set(prompt.id, { op: 'transfer', machine, owner, prompt, at: performance.now() });
        return structuredClone(prompt);
      }
      case 'confirm_transfer_machine': {
        const pending = this.take(field(args, 'id'), 'transfer');
        if (pending.op !== 'transfer') throw apiError('challenge_invalid', 'unknown or used step-up');
        const m = this.machines.find((x) => x.name === pending.machine);
        if (m === undefined) throw apiError('not_found', `no machine ${pending.machine}`);
        // As the broker: the backup owner may take over a machine that lost its owner.
        const asBackup =
          !this.isAdmin() &&
          pending.owner === me &&
          m.backup_owner === me &&
          (m.suspended_at_ms !== null || m.owner === null);
        if (!asBackup) this.requireAdmin("changing a machine's owner");
        if (!this.people.includes(pending.owner)) {
          throw apiError('bad_request', `owner: no active person named ${pending.owner}`);
        }
        m.owner = pending.owner;
        m.suspended_at_ms = null;
        m.suspended_reason = null;
        m.flags = m.flags.filter((f) => f.code !== 'owner_missing' && f.code !== 'owner_disabled' && f.code !== 'suspended');
        return structuredClone(m);
      }
      default:
        return undefined;
    }
  }

  /** What `GET /v1/machines` lists for `me`: everything for an admin, else what they own or back up. */
  private visible(me: string): MachineView[] {
    if (this.isAdmin()) return this.machines;
    return this.machines.filter((m) => m.owner === me || m.backup_owner === me);
  }

  private requireAdmin(what: string): void {
    if (!this.isAdmin()) throw apiError('forbidden', `${what} is for administrators`);
  }

  private take(id: unknown, op: Prepared['op']): Prepared {
    const pending = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (pending === undefined || pending.op !== op) throw apiError('challenge_invalid', 'unknown or used step-up');
    this.pending.delete(pending.prompt.id);
    if (performance.now() - pending.at > pending.prompt.expires_in_secs * 1000) {
      throw apiError('challenge_invalid', 'the step-up challenge expired');
    }
    return pending;
  }

  /** Roughly the core's checks (names, owner, claim rules, sources). */
  private checkSpec(value: unknown): MachineSpec {
    const spec = value as MachineSpec;
    const bad = (f: string, why: string): never => {
      throw apiError('bad_request', `${f}: ${why}`);
    };
    if (typeof spec !== 'object' || spec === null) bad('spec', 'expected { spec: MachineSpec }');
    for (const f of ['name', 'owner', 'environment'] as const) {
      if (typeof spec[f] !== 'string' || !NAME.test(spec[f])) bad(f, "1–64 characters of a-z, A-Z, 0-9, '.', '_', '-', '@'");
    }
    if (typeof spec.purpose !== 'string' || spec.purpose.trim() === '' || /[\n\r]/.test(spec.purpose)) {
      bad('purpose', '1–200 printable characters (no line breaks or invisible characters)');
    }
    if (spec.backup_owner !== null && spec.backup_owner === spec.owner) bad('backup_owner', 'the backup owner is another person');
    for (const s of spec.sources) {
      if (!/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(s)) bad('sources', `"${s}" is not an IP address or CIDR block`);
    }
    if (spec.auth.kind === 'oidc' && Object.keys(spec.auth.claims).length === 0) {
      bad('claims', '1–16 claim rules: a token that no rule constrains would be anyone’s');
    }
    if (spec.expires_at_ms !== null && spec.expires_at_ms <= this.elevation.now()) bad('expires_at_ms', 'the expiry is in the past');
    return structuredClone(spec);
  }
}

