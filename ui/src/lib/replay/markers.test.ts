import { describe, expect, it } from 'vitest';
import { mockCast } from '../ipc/mock';
import { formatOffset, parseChapters, splitLabel } from './markers';

const HEADER = JSON.stringify({ version: 2, width: 80, height: 24 });

function cast(...events: unknown[]): string {
  return `${[HEADER, ...events.map((e) => JSON.stringify(e))].join('\n')}\n`;
}

describe('parseChapters', () => {
  it('lists the marker events in order, with their decision, and nothing else', () => {
    const chapters = parseChapters(
      cast([0.1, 'o', '$ '], [0.5, 'm', 'deny: rm -rf /tmp/x'], [0.6, 'i', 'ls\r'], [1.25, 'm', 'step_up: systemctl stop db'], [1.3, 'r', '100x30']),
      Infinity,
    );
    expect(chapters).toEqual([
      { index: 0, at: 0.5, sessionAt: 0.5, decision: 'deny', text: 'rm -rf /tmp/x' },
      { index: 1, at: 1.25, sessionAt: 1.25, decision: 'step_up', text: 'systemctl stop db' },
    ]);
  });

  it('has no chapters without markers', () => {
    expect(parseChapters(cast([0.1, 'o', 'deny: not a marker'], [0.2, 'i', 'x']), 2)).toEqual([]);
    expect(parseChapters(HEADER, 2)).toEqual([]);
    expect(parseChapters('', 2)).toEqual([]);
  });

  it('shortens long pauses as the player does, so times match the player', () => {
    // Gaps over 2 s count as 2 s: 0.5 → 0.5; 10.5 (gap 10) → 2.5; 11 → 3; 100 (gap 89) → 5.
    const chapters = parseChapters(
      cast([0.5, 'm', 'allow: a'], [10.5, 'o', 'x'], [11, 'm', 'warn: b'], [100, 'm', 'deny: c']),
      2,
    );
    expect(chapters.map((c) => [c.at, c.sessionAt])).toEqual([
      [0.5, 0.5],
      [3, 11],
      [5, 100],
    ]);
    // The mock recording's last chapter comes after twelve minutes of quiet.
    const mock = parseChapters(mockCast(), 2);
    expect(mock.map((c) => [c.decision, formatOffset(c.at), formatOffset(c.sessionAt)])).toEqual([
      ['warn', '0:00', '0:00'],
      ['flagged', '0:01', '0:01'],
      ['deny', '0:03', '12:00'],
    ]);
    expect(mock[1]?.text).toBe('export TOKEN=••••');
  });

  it('keeps each marker’s place among all markers, even past lines it cannot show', () => {
    const text = [
      HEADER,
      JSON.stringify([0.1, 'm', 'allow: a']),
      'not json',
      '  [0.2, "m", "leading space: the player skips it too"]',
      JSON.stringify([0.3, 'm', { label: 'not text' }]),
      JSON.stringify(['0.4', 'm', 'time is not a number']),
      JSON.stringify([0.5, 'm', 'deny: b']),
    ].join('\n');
    expect(parseChapters(text, 2).map((c) => [c.index, c.text])).toEqual([
      [0, 'a'],
      [3, 'b'],
    ]);
  });
});

describe('splitLabel', () => {
  it('takes the decision from before the first colon', () => {
    expect(splitLabel('deny: rm -rf /tmp/x')).toEqual({ decision: 'deny', text: 'rm -rf /tmp/x' });
    expect(splitLabel('flagged: curl http://a:8080/x')).toEqual({ decision: 'flagged', text: 'curl http://a:8080/x' });
    expect(splitLabel('Approve:shutdown -h now')).toEqual({ decision: 'approve', text: 'shutdown -h now' });
    for (const d of ['allow', 'warn', 'step_up'] as const) expect(splitLabel(`${d}: x`).decision).toBe(d);
  });

  it('shows a label that names no decision whole', () => {
    expect(splitLabel('echo a: b')).toEqual({ decision: null, text: 'echo a: b' });
    expect(splitLabel('no colon')).toEqual({ decision: null, text: 'no colon' });
    expect(splitLabel('')).toEqual({ decision: null, text: '' });
  });

  it('puts a label on one line', () => {
    expect(splitLabel('deny: bash <<EOF\nrm -rf /\nEOF')).toEqual({ decision: 'deny', text: 'bash <<EOF rm -rf / EOF' });
    expect(splitLabel('warn: printf \u001b[31mred\u001b[0m\t!')).toEqual({ decision: 'warn', text: 'printf [31mred [0m !' });
  });
});

describe('formatOffset', () => {
  it('writes m:ss, and h:mm:ss from an hour, rounding down', () => {
    expect(formatOffset(0)).toBe('0:00');
    expect(formatOffset(59.99)).toBe('0:59');
    expect(formatOffset(61)).toBe('1:01');
    expect(formatOffset(754.2)).toBe('12:34');
    expect(formatOffset(3600)).toBe('1:00:00');
    expect(formatOffset(3723.9)).toBe('1:02:03');
    expect(formatOffset(-1)).toBe('0:00');
  });
});
