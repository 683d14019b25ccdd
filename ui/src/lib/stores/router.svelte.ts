import { DEFAULT_AREA, isAreaId, type AreaId } from '../areas';

/** `#/settings` → `settings`; anything else (including `#main`) is not a route. */
export function parseHash(hash: string): AreaId | null {
  const match = /^#\/([a-z]+)$/.exec(hash);
  const id = match?.[1];
  return id !== undefined && isAreaId(id) ? id : null;
}

/**
 * A hash router held in a rune. The hash only mirrors the current area so a reload keeps
 * the place; no URL ever leaves the app origin.
 */
export class Router {
  current = $state<AreaId>(DEFAULT_AREA);

  constructor() {
    this.current = parseHash(window.location.hash) ?? DEFAULT_AREA;
  }

  navigate(id: AreaId): void {
    this.current = id;
    const hash = `#/${id}`;
    if (window.location.hash !== hash) {
      window.history.replaceState(null, '', hash);
    }
  }

  /** Follows manual hash edits; returns the cleanup. */
  start(): () => void {
    const onHashChange = (): void => {
      const id = parseHash(window.location.hash);
      if (id !== null) this.current = id;
    };
    window.addEventListener('hashchange', onHashChange);
    return () => window.removeEventListener('hashchange', onHashChange);
  }
}
