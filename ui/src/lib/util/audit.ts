import type { AuditOutcome } from '../ipc';

/**
 * Every kind (action) the workstation core writes to its local audit trail
 * (`Audit::new` / `Audit::for_action` in crates/paw-client), with the one label the UI shows
 * for it. The raw kind appears only in a tooltip and in a record's detail view.
 * `AuditRecordView.kind` is a plain string, so a kind added to the core later still shows
 * (`auditKindLabel` words it), but it belongs here: a test checks the list against the core's.
 */
export const AUDIT_KIND_LABEL = {
  login: 'Sign-in',
  enroll: 'Enrolment',
  'key.add': 'Key added',
  'key.revoke': 'Key revoked',
  'elevation.request': 'Access request',
  'elevation.approve': 'Approval',
  'elevation.deny': 'Denial',
  elevation: 'Elevation',
  break_glass: 'Break-glass',
  'request.cancel': 'Request cancelled',
  'grant.release': 'Grant released',
  'grant.revoke': 'Grant revoked',
  'review.close': 'Review closed',
  'session.open': 'Terminal session opened',
  'session.open_external': 'Session opened in own terminal',
  'session.forward': 'Database port opened',
  'session.files': 'File connection opened',
  'files.upload': 'File uploaded',
  'files.download': 'File downloaded',
  'session.file_save': 'Captured file saved',
  'session.kill': 'Session ended by administrator',
  'session.end': 'Session ended',
  'session.watch': 'Watched a session',
  'command.release': 'Held command run',
  'command.approve': 'Held command approved',
  'command.refuse': 'Held command refused',
  'machine.create': 'Machine identity created',
  'machine.transfer': 'Machine owner assigned',
  'vault.reveal': 'Vaulted secret revealed',
  'vault.rotate': 'Vaulted secret rotated',
} as const satisfies Record<string, string>;

export type AuditKind = keyof typeof AUDIT_KIND_LABEL;

/** The kinds in the order the Kind filter offers them. */
export const AUDIT_KINDS = Object.keys(AUDIT_KIND_LABEL) as AuditKind[];

/**
 * One human label per kind. A kind this UI does not know yet (a newer core) is worded from
 * its name ("session.pause" → "Session pause"), never shown raw beside a label.
 */
export function auditKindLabel(kind: string): string {
  const known = (AUDIT_KIND_LABEL as Record<string, string>)[kind];
  if (known !== undefined) return known;
  const words = kind.replace(/[._]+/g, ' ').trim();
  return words === '' ? 'Unknown' : words.charAt(0).toUpperCase() + words.slice(1);
}

export const AUDIT_OUTCOME_LABEL: Record<AuditOutcome, string> = {
  started: 'Started',
  success: 'Success',
  failure: 'Failure',
  denied: 'Denied',
};

export const AUDIT_OUTCOMES = Object.keys(AUDIT_OUTCOME_LABEL) as AuditOutcome[];
