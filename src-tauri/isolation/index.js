// Tauri isolation hook: every IPC message from the UI passes through this sandboxed frame before
// it is encrypted and sent to the core. Refusing anything that is not a plain command object here
// means a compromised page cannot smuggle prototype-polluted or non-JSON payloads to the core.
window.__TAURI_ISOLATION_HOOK__ = (payload) => {
  if (payload === null || typeof payload !== "object" || typeof payload.cmd !== "string") {
    throw new Error("paw isolation: malformed IPC payload");
  }
  return payload;
};
