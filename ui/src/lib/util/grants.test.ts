import { describe, expect, it } from 'vitest';
import type { GrantView, LiveEvent } from '../ipc';
import { mockGrant } from '../ipc/mock';
import { grantLevel } from './format';
import { announceLiveEvent, endingSoon, grantTotalMs, WARNING_CAP_MS, warningWindowMs } from './grants';

const SEC = 1_000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;

describe('endingSoon: the last 20% of a grant, at most 5 minutes', () => {
  it('warns a 5-minute grant in its last minute only', () => {
    const total = 5 * MIN;
    expect(warningWindowMs(total)).toBe(1 * MIN);
    expect(endingSoon(5 * MIN, total)).toBe(false); // the moment it starts
    expect(endingSoon(4 * MIN, total)).toBe(false);
    expect(endingSoon(1 * MIN + 1, total)).toBe(false);
    expect(endingSoon(1 * MIN, total)).toBe(true); // the boundary counts as soon
    expect(endingSoon(30 * SEC, total)).toBe(true);
  });

  it('warns an 8-hour grant in its last 5 minutes (the cap), not in its last 20%', () => {
    const total = 8 * HOUR;
    expect(warningWindowMs(total)).toBe(WARNING_CAP_MS);
    expect(endingSoon(96 * MIN, total)).toBe(false); // 20% of 8 h, far above the cap
    expect(endingSoon(5 * MIN + 1, total)).toBe(false);
    expect(endingSoon(5 * MIN, total)).toBe(true);
    expect(endingSoon(1 * SEC, total)).toBe(true);
  });

  it('switches from the fraction to the cap at a 25-minute grant', () => {
    expect(warningWindowMs(20 * MIN)).toBe(4 * MIN);
    expect(warningWindowMs(25 * MIN)).toBe(5 * MIN);
    expect(warningWindowMs(30 * MIN)).toBe(5 * MIN);
    expect(endingSoon(4 * MIN, 20 * MIN)).toBe(true);
    expect(endingSoon(4 * MIN + 1, 20 * MIN)).toBe(false);
  });

  it('is never soon once over, and falls back to the cap without a total', () => {
    expect(endingSoon(0, 5 * MIN)).toBe(false);
    expect(endingSoon(-1, 8 * HOUR)).toBe(false);
    for (const total of [null, undefined, 0, -5, Number.NaN]) {
      expect(warningWindowMs(total)).toBe(WARNING_CAP_MS);
    }
    expect(endingSoon(5 * MIN, null)).toBe(true);
    expect(endingSoon(5 * MIN + 1, null)).toBe(false);
  });

  it('takes a grant’s total from what it was granted for', () => {
    expect(grantTotalMs(mockGrant({ id: 'g', user: 'ada', duration_secs: 300 }))).toBe(5 * MIN);
    expect(grantTotalMs(mockGrant({ id: 'g', user: 'ada', duration_secs: 0 }))).toBeNull();
    expect(grantTotalMs(undefined)).toBeNull();
  });
});

describe('grantLevel follows endingSoon', () => {
  it('keeps a fresh 5-minute grant ok, and turns danger in its last minute', () => {
    expect(grantLevel(5 * MIN, 5 * MIN)).toBe('ok');
    expect(grantLevel(2 * MIN, 5 * MIN)).toBe('ok');
    expect(grantLevel(59 * SEC, 5 * MIN)).toBe('danger');
  });

  it('warns an 8-hour grant in its last 5 minutes', () => {
    expect(grantLevel(5 * MIN + SEC, 8 * HOUR)).toBe('ok');
    expect(grantLevel(5 * MIN, 8 * HOUR)).toBe('warning');
    expect(grantLevel(0, 8 * HOUR)).toBe('expired');
  });

  it('warns a 10-minute grant from 2 minutes before its end', () => {
    expect(grantLevel(2 * MIN + SEC, 10 * MIN)).toBe('ok');
    expect(grantLevel(2 * MIN, 10 * MIN)).toBe('warning');
  });

  it('without a total, warns under 5 minutes as before', () => {
    expect(grantLevel(5 * MIN + SEC)).toBe('ok');
    expect(grantLevel(4 * MIN)).toBe('warning');
  });
});

describe('announceLiveEvent', () => {
  const NOW = 1_800_000_000_000;
  function grant(durationSecs: number, endsInMs: number): GrantView {
    return mockGrant({ id: 'g-1', user: 'ada', state: 'active', duration_secs: durationSecs, ends_at_ms: NOW + endsInMs });
  }
  function warning(atMs = NOW): LiveEvent {
    return { kind: 'grant_warning', grant_id: 'g-1', state: 'active', message: 'ends in 5 min', at_ms: atMs };
  }

  it('holds back the broker’s 5-minute warning of a 5-minute grant, and lets its 1-minute one through', () => {
    expect(announceLiveEvent(warning(), [grant(300, 5 * MIN)])).toBe(false);
    expect(announceLiveEvent(warning(NOW + 4 * MIN), [grant(300, 5 * MIN)])).toBe(true);
  });

  it('lets the 5-minute warning of an 8-hour grant through', () => {
    expect(announceLiveEvent(warning(), [grant(8 * 3600, 5 * MIN)])).toBe(true);
  });

  it('keeps the broker’s word for grants it does not know, and every other event', () => {
    expect(announceLiveEvent(warning(), null)).toBe(true);
    expect(announceLiveEvent(warning(), [])).toBe(true);
    expect(announceLiveEvent({ ...warning(), kind: 'grant_started' }, [grant(300, 5 * MIN)])).toBe(true);
  });
});
