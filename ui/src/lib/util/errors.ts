import type { ApiError } from '../ipc';

/**
 * What to tell the user for an error from the sign-in, enrolment, key and step-up commands.
 * Branches on `code` only; the core's message is shown as detail, as text.
 */
export function authErrorText(error: ApiError): string {
  switch (error.code) {
    case 'invite_invalid':
      return 'This invite code is not valid or has expired.';
    case 'account_locked':
      return 'This account is locked. Ask an administrator to unlock it.';
    case 'rate_limited':
      return 'Too many attempts. Wait a moment, then try again.';
    case 'webauthn_rejected':
      return 'Your security key did not confirm. Check it is plugged in, then try again.';
    case 'security_key_missing':
      return 'No security key found. Plug in one key (only one) and try again.';
    case 'pin_invalid':
      return 'Wrong PIN three times. Replug your key, then try again; it counts every wrong PIN.';
    case 'pin_blocked':
      return 'Your security key’s PIN is blocked. Replug the key; if it stays blocked, reset the key and register it again.';
    case 'pin_not_set':
      return 'Your security key has no PIN. Set one with the key vendor’s tool, then try again.';
    case 'key_cancelled':
      return 'Cancelled.';
    case 'key_timeout':
      return 'Your security key timed out waiting for you. Try again.';
    case 'keyring_unavailable':
      return 'The system keyring is locked or unavailable. Unlock it and try again.';
    case 'forbidden':
      return 'The access policy does not allow you to do this.';
    case 'audit_unavailable':
      return 'Not started: the local audit trail cannot record it (the detail says why). Free disk space or fix the file, then try again.';
    case 'audit_diverged':
      return 'Not started: the broker refused this workstation’s audit trail because it no longer matches what the broker last confirmed (records may have been removed). Tell your security team; do not reset the trail yourself.';
    case 'audit_witness_changed':
      return 'Not started: the broker now confirms the audit trail with a different key than the one this app trusts. Ask an administrator to confirm the broker’s witness key.';
    case 'target_unavailable':
      return 'The target could not be reached, or refused the broker (the detail says why).';
    case 'reauthentication_required':
      return 'Sign in again with your security key to continue.';
    case 'unauthenticated':
      return 'You are not signed in, or your session has ended.';
    case 'challenge_invalid':
      return 'This confirmation request is no longer valid. Start again.';
    case 'conflict':
      return 'That change conflicts with the current state of your keys.';
    case 'timeout':
      return 'No answer in time. Try again.';
    case 'bad_request':
      return 'Check what you entered and try again.';
    case 'not_found':
      return 'That item no longer exists.';
    case 'broker_not_configured':
      return 'No broker is configured. Set one up in Settings.';
    case 'broker_unreachable':
      return 'The broker cannot be reached right now.';
    case 'broker_untrusted':
      return 'The broker’s certificate is not signed by the pinned CA. paw will not talk to it.';
    case 'broker_protocol':
      return 'The broker speaks a protocol version this app does not support.';
    default:
      return 'Something went wrong in the app core.';
  }
}

/** What to tell the user when the core refused a PIN before it reached the key. */
export function pinErrorText(error: ApiError): string {
  if (error.code === 'bad_request') return 'The PIN was not taken. Check it and try again.';
  return authErrorText(error);
}

/**
 * What to tell the user for an error from the elevation commands (requests, decisions,
 * break-glass, release, reviews). Branches on `code` only; for `bad_request` the core's
 * message names the rule that was broken, so callers show it prominently as detail.
 */
export function elevationErrorText(error: ApiError): string {
  switch (error.code) {
    case 'forbidden':
      return 'The access policy does not allow this.';
    case 'bad_request':
      return 'The broker refused this because a rule is not met:';
    case 'conflict':
      return 'This request or grant has changed in the meantime. Check its current state.';
    case 'not_found':
      return 'That entitlement, request or grant no longer exists.';
    case 'challenge_invalid':
      return 'This confirmation is no longer valid. Start again.';
    default:
      return authErrorText(error);
  }
}

/**
 * What to tell the user for an error from the machine-identity commands (create a machine,
 * assign its owner). Branches on `code` only; for `bad_request` the core's message names the
 * field and the rule, so callers show it prominently as detail.
 */
export function machineErrorText(error: ApiError): string {
  switch (error.code) {
    case 'forbidden':
      return 'Only administrators create machine identities and assign their owners.';
    case 'bad_request':
      return 'The broker refused this because a rule is not met:';
    case 'conflict':
      return 'A user or machine with this name exists already.';
    case 'not_found':
      return 'That machine no longer exists.';
    case 'challenge_invalid':
      return 'This confirmation is no longer valid. Start again.';
    default:
      return authErrorText(error);
  }
}

/**
 * What to tell the user for an error from the vault commands (reveal a secret, rotate one).
 * Branches on `code` only; for `bad_request` and `checked_out` the core's message says which
 * rule, or who holds the account and until when, so callers show it as detail.
 */
export function vaultErrorText(error: ApiError): string {
  switch (error.code) {
    case 'checked_out':
      return 'Someone else has this account checked out:';
    case 'vault_unavailable':
      return 'The broker cannot open its vault right now (its key is missing or wrong). Tell an administrator; nothing was revealed.';
    case 'forbidden':
      return 'The access policy does not allow this: revealing needs a grant whose entitlement allows it, rotating needs an administrator.';
    case 'bad_request':
      return 'The broker refused this because a rule is not met:';
    case 'conflict':
      return 'This account changed in the meantime (a rotation may be running). Check its current state.';
    case 'not_found':
      return 'That account or grant no longer exists.';
    case 'challenge_invalid':
      return 'This confirmation is no longer valid. Start again.';
    default:
      return authErrorText(error);
  }
}
