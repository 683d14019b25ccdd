import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';
import { defineConfig } from 'vitest/config';

// The desktop shell serves dist/ at the app origin under a strict CSP
// (`default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'`), so the build must emit
// every script and stylesheet as a file: no inline <script>, no injected <style>.
// The shell freezes the JS prototypes (tauri `freezePrototype`). Then assigning a property that
// Object.prototype already has (`ns.toString = f`) throws in strict code — the "override
// mistake" — and xterm.js does that once at load, which stopped the whole UI from starting.
// Defining the property instead is what the assignment meant; scripts/check-dist.mjs fails the
// build if any such assignment is left in the output.
const OVERRIDES = /([A-Za-z_$][\w$]*)\.(toString|valueOf|toLocaleString|hasOwnProperty|isPrototypeOf|propertyIsEnumerable)=(?!=)([A-Za-z_$][\w$]*)(?=[;,)}])/g;
function frozenPrototypeSafe() {
  return {
    name: 'paw-frozen-prototype-safe',
    renderChunk(code: string) {
      if (!OVERRIDES.test(code)) return null;
      OVERRIDES.lastIndex = 0;
      return {
        code: code.replace(
          OVERRIDES,
          (_m, obj: string, prop: string, value: string) =>
            `Object.defineProperty(${obj},"${prop}",{value:${value},writable:!0,configurable:!0,enumerable:!0})`,
        ),
        map: null,
      };
    },
  };
}

export default defineConfig({
  plugins: [svelte(), svelteTesting(), frozenPrototypeSafe()],
  base: '/',
  clearScreen: false,
  server: {
    port: 1420,
    strictPort: true,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The polyfill is bundled code, but keep the output plain and predictable.
    modulePreload: { polyfill: false },
    // Never turn small assets into data: URLs (CSP: img-src/font-src fall back to 'self').
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
    // xterm.js (the Sessions terminal) is most of the bundle: its own file, cached apart. The
    // replay player (with its WebAssembly terminal) is loaded only when a replay opens.
    rollupOptions: {
      output: { manualChunks: { xterm: ['@xterm/xterm', '@xterm/addon-fit'], asciinema: ['asciinema-player'] } },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    setupFiles: ['src/test/setup.ts'],
    restoreMocks: true,
  },
});
