import { logout, type ApiError, type SignOutReport } from '../ipc';

/**
 * The sign-out and what it ended, kept from the sidebar's button to the sign-in screen's notice.
 * The core forgets the sign-in on this computer whatever the broker says; `report` says whether
 * the broker also revoked it.
 */
export class SignOutStore {
  pending = $state(false);
  /** What the last sign-out ended; `null` once dismissed or when someone signs in. */
  report = $state.raw<SignOutReport | null>(null);
  /** The core could not complete the sign-out itself (e.g. the keyring refused). */
  error = $state.raw<ApiError | null>(null);

  async signOut(): Promise<void> {
    if (this.pending) return;
    this.pending = true;
    this.error = null;
    this.report = null;
    try {
      this.report = await logout();
    } catch (reason) {
      this.error = reason as ApiError; // the ipc module only rejects with ApiError
    } finally {
      this.pending = false;
    }
  }

  dismiss(): void {
    this.report = null;
  }
}

/** Codes that mean the request never got an answer from the broker. */
const UNREACHED = new Set<ApiError['code']>([
  'broker_unreachable',
  'broker_untrusted',
  'broker_not_configured',
  'timeout',
]);

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

export interface SignOutNotice {
  tone: 'success' | 'warning';
  text: string;
  /** The core's message, when the broker did not confirm. */
  detail: string | null;
  code: ApiError['code'] | null;
}

/** What the sign-in screen says about a sign-out; `null` when there is nothing to say. */
export function signOutNotice(report: SignOutReport): SignOutNotice | null {
  const ends = 'the sign-in ends at the broker when it next expires (at most 15 minutes idle).';
  if (report.broker_error !== null) {
    const { code, message } = report.broker_error;
    const why = UNREACHED.has(code) ? 'The broker could not be reached' : 'The broker did not confirm the sign-out';
    return { tone: 'warning', text: `Signed out on this computer. ${why} (${code}): ${ends}`, detail: message, code };
  }
  if (report.revoked !== null) {
    const { access_tokens, refresh_tokens } = report.revoked;
    return {
      tone: 'success',
      text:
        `Signed out. The broker revoked this sign-in: ${count(access_tokens, 'access token')} and ` +
        `${count(refresh_tokens, 'refresh token')} no longer work on any broker.`,
      detail: null,
      code: null,
    };
  }
  return null;
}
