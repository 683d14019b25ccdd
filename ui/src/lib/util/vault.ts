import { LIMITS, type GrantView, type VaultAccountView, type VaultKind } from '../ipc';

/**
 * Words and rules for the Vault page. The broker decides everything (who may reveal, whether a
 * rotation worked); these only read its answers: which accounts need attention, which of the
 * user's grants can be offered for a reveal, how a rotation state reads.
 */

export const KIND_LABEL: Record<VaultKind, string> = {
  ssh_password: 'SSH password',
  ssh_key: 'SSH key',
  postgres_password: 'PostgreSQL password',
  generic: 'Other secret',
};

/** The rotation journal's states (`RotationStatus.state`) in words. */
const STATE_LABEL: Record<string, string> = {
  idle: 'Settled',
  pending: 'New secret stored, not yet on the target',
  applied: 'Changed on the target, being verified',
  verified: 'Verified, being promoted',
  reconciling: 'Being reconciled after an interruption',
  failed: 'Failed',
};

/** A state this UI does not know yet is shown as the broker wrote it, capitalised. */
export function rotationStateLabel(state: string): string {
  const known = STATE_LABEL[state];
  if (known !== undefined) return known;
  const words = state.replace(/[_.-]+/g, ' ').trim();
  return words === '' ? 'Unknown' : words.charAt(0).toUpperCase() + words.slice(1);
}

export const RESULT_LABEL: Record<string, string> = {
  ok: 'Last rotation worked',
  failed: 'Last rotation failed',
  never: 'Never rotated',
};

/**
 * How an account's rotation stands: `failed` (the last one failed, or they keep failing: an
 * alert until one works), `unsettled` (a rotation is under way or being reconciled), `ok`.
 */
export type RotationHealth = 'failed' | 'unsettled' | 'ok';

export function rotationHealth(account: VaultAccountView): RotationHealth {
  const r = account.rotation;
  if (r.state === 'failed' || r.last_result === 'failed' || r.failing_since_ms !== null) return 'failed';
  if (r.state !== 'idle') return 'unsettled';
  return 'ok';
}

/**
 * The accounts the health list shows: failed ones first (the longest failing first), then the
 * unsettled ones, each by name. An account stays here for as long as the broker reports it so.
 */
export function needsAttention(accounts: readonly VaultAccountView[]): VaultAccountView[] {
  const since = (a: VaultAccountView): number => a.rotation.failing_since_ms ?? Number.MAX_SAFE_INTEGER;
  return accounts
    .filter((a) => rotationHealth(a) !== 'ok')
    .sort((a, b) => {
      const ha = rotationHealth(a);
      const hb = rotationHealth(b);
      if (ha !== hb) return ha === 'failed' ? -1 : 1;
      if (ha === 'failed' && since(a) !== since(b)) return since(a) - since(b);
      return a.name.localeCompare(b.name);
    });
}

/** The table's order: accounts that need attention first, then by name. */
export function sortAccounts(accounts: readonly VaultAccountView[]): VaultAccountView[] {
  const rank = (a: VaultAccountView): number => ({ failed: 0, unsettled: 1, ok: 2 })[rotationHealth(a)];
  return [...accounts].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/**
 * The user's grants a reveal of `account` may name: active and not ended by the broker's clock,
 * for this account (the grant's target and role are the account's `target/account`), the one
 * ending last first. Whether the grant's entitlement allows a reveal is the broker's to say.
 */
export function revealGrants(account: VaultAccountView, grants: readonly GrantView[] | null, nowMs: number | null): GrantView[] {
  return (grants ?? [])
    .filter(
      (g) =>
        g.state === 'active' &&
        g.target === account.target &&
        g.role === account.account &&
        (g.ends_at_ms === null || nowMs === null || g.ends_at_ms > nowMs),
    )
    .sort((a, b) => (b.ends_at_ms ?? Infinity) - (a.ends_at_ms ?? Infinity) || a.id.localeCompare(b.id));
}

/** The broker rotates every kind but a generic secret (an appliance's, changed by hand). */
export function rotatable(account: VaultAccountView): boolean {
  return account.kind !== 'generic';
}

/** Someone other than `me` holds `account` checked out now (it is exclusive): a reveal would be refused. */
export function heldByOther(account: VaultAccountView, me: string | null, nowMs: number): boolean {
  const h = account.holder;
  return account.exclusive && h !== null && h.user !== me && h.until_ms > nowMs;
}

/**
 * What is wrong with a reason before anything is sent, or `null`: required, one line, at most
 * the core's limit. It is sent as typed (trimmed of outer spaces, which the core refuses).
 */
export function reasonProblem(reason: string): string | null {
  const text = reason.trim();
  if (text === '') return 'Say why, for the audit trail.';
  if ([...text].length > LIMITS.comment_max_chars) return `At most ${LIMITS.comment_max_chars} characters.`;
  if (/[\u0000-\u001f\u007f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/.test(text)) {
    return 'One line of visible text.';
  }
  return null;
}
