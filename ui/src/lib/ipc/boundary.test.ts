// @vitest-environment node
/**
 * Static guards over the UI sources (security cases G1/G3 and the CSP).
 * This file lives in src/lib/ipc/ because it has to name the package it hunts for.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const UI_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(UI_ROOT, 'src');
const IPC_DIR = join(SRC, 'lib', 'ipc') + sep;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const SOURCE = /\.(ts|js|mjs|cjs|svelte|html)$/;
const sources = walk(SRC).filter((p) => SOURCE.test(p));

/** Any mention of the Tauri packages outside the ipc module: import, dynamic import, require. */
export function tauriMentions(text: string): string[] {
  return [...text.matchAll(/@tauri-apps\/[\w-]+/g)].map((m) => m[0]);
}

/** Markup that would break the CSP or render user text as HTML. */
export function cspViolations(svelteSource: string): string[] {
  const found: string[] = [];
  const markup = svelteSource.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<style[\s\S]*?<\/style>/g, '');
  if (/\{@html\b/.test(svelteSource)) found.push('{@html}');
  if (/\sstyle\s*=/.test(markup)) found.push('style attribute');
  if (/\sstyle:[\w-]+/.test(markup)) found.push('style: directive');
  if (/\s(in|out|transition|animate):[\w$]+/.test(markup)) found.push('transition (injects <style>)');
  if (/\bhref\s*=\s*["'{]?\s*["'`]?https?:/.test(markup)) found.push('external href');
  if (/\beval\s*\(|\bnew\s+Function\s*\(/.test(svelteSource)) found.push('eval');
  return found;
}

describe('only src/lib/ipc imports @tauri-apps', () => {
  it('finds the ipc module itself (the scan sees real files)', () => {
    const ipc = sources.filter((p) => p.startsWith(IPC_DIR) && tauriMentions(readFileSync(p, 'utf8')).length > 0);
    expect(ipc.map((p) => relative(SRC, p))).toContain(join('lib', 'ipc', 'index.ts'));
  });

  it('detects an offending import', () => {
    expect(tauriMentions("import { invoke } from '@tauri-apps/api/core';")).toEqual(['@tauri-apps/api']);
    expect(tauriMentions("await import('@tauri-apps/plugin-shell')")).toEqual(['@tauri-apps/plugin-shell']);
  });

  it('no other file under src/ mentions @tauri-apps', () => {
    const offenders = sources
      .filter((p) => !p.startsWith(IPC_DIR))
      .filter((p) => tauriMentions(readFileSync(p, 'utf8')).length > 0)
      .map((p) => relative(UI_ROOT, p));
    expect(offenders).toEqual([]);
  });

  it('index.html loads no Tauri script either', () => {
    expect(tauriMentions(readFileSync(join(UI_ROOT, 'index.html'), 'utf8'))).toEqual([]);
  });
});

describe('components stay inside the CSP and render text inert', () => {
  it('detects each kind of violation', () => {
    expect(cspViolations('<p>{@html x}</p>')).toEqual(['{@html}']);
    expect(cspViolations('<p style="color: red">x</p>')).toEqual(['style attribute']);
    expect(cspViolations('<p style:color={c}>x</p>')).toEqual(['style: directive']);
    expect(cspViolations('<p transition:fade>x</p>')).toEqual(['transition (injects <style>)']);
    expect(cspViolations('<a href="https://example.com">x</a>')).toEqual(['external href']);
    expect(cspViolations('<p class="ok">{text}</p>')).toEqual([]);
  });

  it('no .svelte file under src/ has a violation', () => {
    const offenders = sources
      .filter((p) => p.endsWith('.svelte'))
      .map((p) => ({ file: relative(UI_ROOT, p), found: cspViolations(readFileSync(p, 'utf8')) }))
      .filter((x) => x.found.length > 0);
    expect(offenders).toEqual([]);
  });
});
