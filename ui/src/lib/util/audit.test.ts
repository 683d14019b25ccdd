// @vitest-environment node
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AUDIT_KIND_LABEL, AUDIT_KINDS, auditKindLabel } from './audit';

/** The kinds the workstation core writes today (crates/paw-client: `Audit::new` / `Audit::for_action`). */
const CORE_KINDS = [
  'login',
  'enroll',
  'key.add',
  'key.revoke',
  'elevation.request',
  'elevation.approve',
  'elevation.deny',
  'elevation',
  'break_glass',
  'request.cancel',
  'grant.release',
  'grant.revoke',
  'review.close',
  'session.open',
  'session.open_external',
  'session.forward',
  'session.kill',
  'session.end',
  'session.watch',
  'command.release',
  'command.approve',
  'command.refuse',
  'machine.create',
  'machine.transfer',
  'vault.reveal',
  'vault.rotate',
];

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const CORE_SOURCES = [join(REPO, 'crates', 'paw-client', 'src'), join(REPO, 'src-tauri', 'src')];

function rustFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? rustFiles(path) : path.endsWith('.rs') ? [path] : [];
  });
}

/** The string literals in the first argument of every `Audit::new(` / `Audit::for_action(` call. */
export function kindsIn(rust: string): string[] {
  const kinds: string[] = [];
  for (const call of rust.matchAll(/Audit::(?:new|for_action)\(([^,]*),/g)) {
    for (const literal of (call[1] ?? '').matchAll(/"([^"\\]+)"/g)) kinds.push(literal[1] ?? '');
  }
  return kinds;
}

describe('audit kinds', () => {
  it('has one label for every kind the core emits', () => {
    for (const kind of CORE_KINDS) {
      expect(AUDIT_KIND_LABEL, kind).toHaveProperty([kind]);
      expect(auditKindLabel(kind)).not.toBe(kind);
    }
    expect(AUDIT_KINDS).toEqual(expect.arrayContaining(CORE_KINDS));
  });

  it('labels are distinct, so no two kinds read alike', () => {
    const labels = Object.values(AUDIT_KIND_LABEL);
    expect(new Set(labels).size).toBe(labels.length);
  });

  it('reads kinds out of Rust calls, the conditional ones included', () => {
    const rust = `
      let what = Audit::for_action("session.open", target.clone(), &p.action);
      Audit::for_action(
          if *approve {
              "elevation.approve"
          } else {
              "elevation.deny"
          },
          request_id.clone(),
      Audit::new(
          "session.end",
          target,`;
    expect(kindsIn(rust)).toEqual(['session.open', 'elevation.approve', 'elevation.deny', 'session.end']);
  });

  const files = CORE_SOURCES.flatMap(rustFiles);
  it.skipIf(files.length === 0)('has a label for every kind in the core’s sources', () => {
    const found = new Set(files.flatMap((f) => kindsIn(readFileSync(f, 'utf8'))));
    expect(found.size).toBeGreaterThanOrEqual(10); // the scan sees real calls
    const missing = [...found].filter((k) => !(k in AUDIT_KIND_LABEL));
    expect(missing, 'add these kinds to AUDIT_KIND_LABEL in ui/src/lib/util/audit.ts').toEqual([]);
  });

  it('words a kind it does not know from its name, never raw', () => {
    expect(auditKindLabel('session.pause')).toBe('Session pause');
    expect(auditKindLabel('vault.checkout_done')).toBe('Vault checkout done');
    expect(auditKindLabel('')).toBe('Unknown');
  });
});
