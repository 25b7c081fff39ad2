// The connection state in the top bar: connected, reconnecting, offline.

import { byId } from "./dom.js";

/** @typedef {import("../store.js").Store} Store */

const LABELS = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  stopped: "Not connected",
};

/** @param {Store} store */
export function statusView(store) {
  const el = byId("connection-state", HTMLSpanElement);
  return function render() {
    const { state } = store.connection;
    el.dataset.state = state;
    el.textContent = LABELS[state];
    const notice = byId("notice", HTMLParagraphElement);
    notice.textContent = store.notice;
  };
}
