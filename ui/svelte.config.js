// Runes everywhere, and no compiler option that would put CSS or code inline:
// the app runs under `style-src 'self'; script-src 'self'`.
/** @type {import('@sveltejs/vite-plugin-svelte').SvelteConfig} */
export default {
  compilerOptions: {
    runes: true,
  },
};
