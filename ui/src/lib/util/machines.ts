import type { MachineFlag, MachineSpec, MachineView } from '../ipc';

/** How loud a flag is: `danger` stops the machine or means someone may be misusing it. */
export type FlagTone = 'danger' | 'warning';

interface FlagMeta {
  label: string;
  tone: FlagTone;
  /** The OWASP Non-Human Identities Top 10 (2025) risk it points at. */
  risk: string;
}

/**
 * Every flag code the broker raises (`MachineFlag.code`), in words. A code this UI does not
 * know yet (a newer broker) is worded from its name, never shown raw beside a label.
 */
export const FLAG_META: Record<string, FlagMeta> = {
  owner_missing: { label: 'No owner', tone: 'danger', risk: 'NHI1 Improper offboarding' },
  owner_disabled: { label: 'Owner disabled', tone: 'danger', risk: 'NHI1 Improper offboarding' },
  suspended: { label: 'Suspended', tone: 'danger', risk: 'NHI1 Improper offboarding' },
  expired: { label: 'Expired', tone: 'warning', risk: 'NHI7 Long-lived secrets' },
  unused: { label: 'Unused', tone: 'warning', risk: 'NHI1 Improper offboarding' },
  never_used: { label: 'Never used', tone: 'warning', risk: 'NHI1 Improper offboarding' },
  standing_privilege: { label: 'Standing privilege', tone: 'warning', risk: 'NHI5 Overprivileged NHI' },
  key_not_rotated: { label: 'Key not rotated', tone: 'warning', risk: 'NHI7 Long-lived secrets' },
  new_source: { label: 'New source', tone: 'warning', risk: 'NHI9 NHI reuse' },
  source_refused: { label: 'Source refused', tone: 'danger', risk: 'NHI9 NHI reuse' },
  interactive_use: { label: 'Used interactively', tone: 'danger', risk: 'NHI10 Human use of NHI' },
};

function worded(code: string): string {
  const words = code.replace(/[._]+/g, ' ').trim();
  return words === '' ? 'Unknown' : words.charAt(0).toUpperCase() + words.slice(1);
}

export function flagLabel(code: string): string {
  return FLAG_META[code]?.label ?? worded(code);
}

export function flagTone(code: string): FlagTone {
  return FLAG_META[code]?.tone ?? 'warning';
}

export function flagRisk(code: string): string | null {
  return FLAG_META[code]?.risk ?? null;
}

function stamp(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * The broker's words for a flag. The `suspended` flag's detail carries the time as a raw
 * number; the machine's own fields say the same in a readable form, so those are used.
 */
export function flagDetail(flag: MachineFlag, machine: MachineView): string {
  if (flag.code === 'suspended' && machine.suspended_at_ms !== null) {
    return `suspended since ${stamp(machine.suspended_at_ms)}: ${machine.suspended_reason ?? 'no reason given'}`;
  }
  return flag.detail;
}

/** One flag in a sentence, for a badge's tooltip. */
export function flagSentence(flag: MachineFlag, machine: MachineView): string {
  const seq = flag.audit_seq === null ? '' : ` (broker audit record #${flag.audit_seq})`;
  return `${flagLabel(flag.code)}: ${flagDetail(flag, machine)}${seq}`;
}

export function isSuspended(m: MachineView): boolean {
  return m.suspended_at_ms !== null;
}

export const AUTH_LABEL: Record<string, { long: string; short: string }> = {
  key: { long: 'Key pair', short: 'Key pair' },
  oidc: { long: 'OIDC workload token', short: 'OIDC token' },
};

/** How a machine proves itself, in words (`short` for a table cell). */
export function authLabel(kind: string, short = false): string {
  const label = AUTH_LABEL[kind];
  if (label === undefined) return worded(kind);
  return short ? label.short : label.long;
}

/** "12 days", "1 day", "today". */
export function formatDays(days: number): string {
  if (days <= 0) return 'today';
  return days === 1 ? '1 day' : `${days} days`;
}

/** A registered key's state at broker time `nowMs`: in use, retiring (until when), or retired. */
export function keyState(retiresAtMs: number | null, nowMs: number): 'active' | 'retiring' | 'retired' {
  if (retiresAtMs === null) return 'active';
  return retiresAtMs > nowMs ? 'retiring' : 'retired';
}

/** The filter bar's values: which machines show. */
export interface MachineFilter {
  /** '' all, 'flagged' any flag, 'suspended' suspended only. */
  flags: string;
  /** '' any, else an exact environment. */
  environment: string;
  /** Words that must occur in the name, owner or purpose (case-insensitive). */
  text: string;
}

export function filterMachines(machines: readonly MachineView[], f: MachineFilter): MachineView[] {
  const words = f.text.toLowerCase().split(/\s+/).filter((w) => w !== '');
  return machines.filter((m) => {
    if (f.flags === 'flagged' && m.flags.length === 0) return false;
    if (f.flags === 'suspended' && !isSuspended(m)) return false;
    if (f.environment !== '' && m.environment !== f.environment) return false;
    const hay = `${m.name} ${m.owner ?? ''} ${m.backup_owner ?? ''} ${m.purpose}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/** Suspended machines first, then flagged ones, then by name: what needs a person comes first. */
export function sortMachines(machines: readonly MachineView[]): MachineView[] {
  const rank = (m: MachineView): number => (isSuspended(m) ? 0 : m.flags.length > 0 ? 1 : 2);
  return [...machines].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/** Environments in the inventory, sorted, for the filter. */
export function environments(machines: readonly MachineView[]): string[] {
  return [...new Set(machines.map((m) => m.environment))].sort();
}

/** What the New machine form holds, as typed. */
export interface MachineForm {
  name: string;
  owner: string;
  backup_owner: string;
  purpose: string;
  environment: string;
  /** `datetime-local` value, or '' for no expiry. */
  expires: string;
  /** One `name=value` a line. */
  labels: string;
  auth: 'key' | 'oidc';
  issuer: string;
  /** One `claim=rule` a line. */
  claims: string;
  /** Addresses or CIDR blocks, one a line (or separated by commas or spaces). */
  sources: string;
}

export const EMPTY_MACHINE_FORM: Readonly<MachineForm> = Object.freeze({
  name: '',
  owner: '',
  backup_owner: '',
  purpose: '',
  environment: 'prod',
  expires: '',
  labels: '',
  auth: 'key',
  issuer: 'https://token.actions.githubusercontent.com',
  claims: '',
  sources: '',
});

export type FormProblems = Partial<Record<keyof MachineForm, string>>;

/** `a=b` lines into a map; a line without `=` is a problem (named by its text). */
export function parsePairs(text: string): { pairs: Record<string, string>; bad: string | null } {
  const pairs: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const at = line.indexOf('=');
    if (at <= 0) return { pairs, bad: line };
    pairs[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return { pairs, bad: null };
}

const NAME = /^[A-Za-z0-9._@-]{1,64}$/;
const NAME_RULE = "1–64 characters of a-z, A-Z, 0-9, '.', '_', '-', '@'";

/**
 * The spec the form describes, or what is wrong with it, field by field. A quick first check
 * so a typo shows at once; the core and the broker check everything again.
 */
export function formToSpec(form: MachineForm): { spec: MachineSpec | null; problems: FormProblems } {
  const problems: FormProblems = {};
  const name = form.name.trim();
  const owner = form.owner.trim();
  const backup = form.backup_owner.trim();
  const environment = form.environment.trim();
  if (!NAME.test(name)) problems.name = NAME_RULE;
  if (!NAME.test(owner)) problems.owner = `The accountable person’s user name: ${NAME_RULE}`;
  if (backup !== '') {
    const who = backup.startsWith('group:') ? backup.slice('group:'.length) : backup;
    if (!NAME.test(who)) problems.backup_owner = 'A user name, or group:NAME';
    else if (backup === owner) problems.backup_owner = 'The backup owner is another person';
  }
  if (form.purpose.trim() === '') problems.purpose = 'Say what it is for: the inventory and the audit read it';
  else if ([...form.purpose].length > 200) problems.purpose = 'At most 200 characters';
  if (!NAME.test(environment)) problems.environment = NAME_RULE;
  let expires: number | null = null;
  if (form.expires !== '') {
    const at = new Date(form.expires).getTime();
    if (Number.isNaN(at)) problems.expires = 'Not a date and time';
    else expires = at;
  }
  const labels = parsePairs(form.labels);
  if (labels.bad !== null) problems.labels = `“${labels.bad}” is not name=value`;
  const sources = form.sources
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const badSource = sources.find((s) => !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(s));
  if (badSource !== undefined) problems.sources = `“${badSource}” is not an IP address or CIDR block`;
  let auth: MachineSpec['auth'] = { kind: 'key' };
  if (form.auth === 'oidc') {
    const issuer = form.issuer.trim();
    if (issuer === '' || /\s/.test(issuer)) problems.issuer = 'The issuer’s exact iss value, one of the broker’s trusted issuers';
    const claims = parsePairs(form.claims);
    if (claims.bad !== null) problems.claims = `“${claims.bad}” is not claim=rule`;
    else if (Object.keys(claims.pairs).length === 0) {
      problems.claims = 'At least one rule: a token no rule constrains would be anyone’s';
    }
    auth = { kind: 'oidc', issuer, claims: claims.pairs };
  }
  if (Object.keys(problems).length > 0) return { spec: null, problems };
  return {
    spec: {
      name,
      owner,
      backup_owner: backup === '' ? null : backup,
      purpose: form.purpose.trim(),
      environment,
      expires_at_ms: expires,
      labels: labels.pairs,
      auth,
      sources,
    },
    problems,
  };
}
