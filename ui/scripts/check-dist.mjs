// Fails the build if dist/ would break under the app's CSP
// (`default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; object-src 'none'`;
// 'wasm-unsafe-eval' is for the replay player's bundled WebAssembly terminal and allows no eval):
// inline <script> or <style>, style="" attributes, inline event handlers, remote or data: URLs
// in index.html, or eval-like code in emitted scripts.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url);
const problems = [];

const html = readFileSync(new URL('index.html', dist), 'utf8');
for (const match of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
  const [, attrs = '', body = ''] = match;
  if (!/\bsrc=/.test(attrs)) problems.push('index.html: <script> without src');
  if (body.trim() !== '') problems.push('index.html: inline script content');
}
if (/<style\b/i.test(html)) problems.push('index.html: inline <style>');
if (/\sstyle\s*=/i.test(html)) problems.push('index.html: style attribute');
if (/\son[a-z]+\s*=/i.test(html)) problems.push('index.html: inline event handler');
if (/(src|href)\s*=\s*["']?(https?:|\/\/|data:)/i.test(html)) problems.push('index.html: remote or data: URL');

const assets = new URL('assets/', dist);
for (const name of readdirSync(assets)) {
  const text = readFileSync(join(assets.pathname, name), 'utf8');
  if (name.endsWith('.js')) {
    if (/\beval\s*\(|\bnew\s+Function\s*\(/.test(text)) problems.push(`${name}: eval or new Function`);
    if (/mockIPC|installMockCore/.test(text)) problems.push(`${name}: the mock IPC is bundled`);
    // Under the shell's frozen prototypes this throws at run time (see vite.config.ts).
    const override = text.match(/[A-Za-z_$][\w$]*\.(toString|valueOf|toLocaleString|hasOwnProperty|isPrototypeOf|propertyIsEnumerable)=(?!=)/);
    if (override) problems.push(`${name}: assigns ${override[0]} (fails under frozen prototypes)`);
  }
  if (name.endsWith('.css') && /@import\s+url\(\s*["']?https?:/i.test(text)) {
    problems.push(`${name}: remote @import`);
  }
}

if (problems.length > 0) {
  console.error(`dist/ breaks the CSP:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('dist/ CSP check: ok (no inline script/style, no eval, no mock IPC)');
