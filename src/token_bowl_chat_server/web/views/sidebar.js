// The conversation list (room + DMs, each with an unread badge) and the people list with
// live presence. Clicking a conversation or a person calls `open`.

import { ROOM, dmKey } from "../store.js";
import { avatar } from "./avatar.js";
import { botTag, byId, make } from "./dom.js";

/** @typedef {import("../store.js").Store} Store */

/**
 * @param {Store} store
 * @param {{open: (key: string) => void}} actions
 */
export function sidebarView(store, actions) {
  const conversations = byId("conversations", HTMLUListElement);
  const people = byId("people", HTMLUListElement);

  /** @param {string} key @param {string} label @param {number} unread @param {boolean} online */
  function conversationItem(key, label, unread, online) {
    const li = make("li");
    const button = make("button", { className: "item", testid: "conversation" });
    button.type = "button";
    button.dataset.key = key;
    if (key === store.current) button.setAttribute("aria-current", "true");
    if (key !== ROOM) {
      const dot = make("span", { className: online ? "dot online" : "dot" });
      dot.setAttribute("aria-hidden", "true");
      button.appendChild(dot);
    }
    button.appendChild(make("span", { className: "label", text: label }));
    if (unread > 0) {
      const badge = make("span", { className: "badge", text: String(unread), testid: "unread-badge" });
      badge.setAttribute("aria-label", `${unread} unread`);
      button.appendChild(badge);
    }
    button.addEventListener("click", () => actions.open(key));
    li.appendChild(button);
    return li;
  }

  /** What the lists show, to skip rebuilding them (and losing keyboard focus) when unchanged. */
  let shown = "";

  return function render() {
    const partners = [...store.partners].sort((a, b) => a.localeCompare(b));
    const me = store.me?.username;
    const everyone = [...store.users.values()].filter((u) => u.username !== me && !u.viewer);
    everyone.sort(
      (a, b) =>
        Number(store.online.has(b.username)) - Number(store.online.has(a.username)) ||
        a.username.localeCompare(b.username),
    );
    const state = JSON.stringify([
      store.current,
      [ROOM, ...partners].map((name) => [name, store.unreadIn(name === ROOM ? ROOM : dmKey(name))]),
      everyone.map((u) => [u.username, u.logo, u.emoji, u.bot]),
      [...store.online].sort(),
    ]);
    if (state === shown) return;
    shown = state;
    // Rebuilt lists get the focus back on the same item.
    const focused = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const focusKey = focused?.dataset.key;
    const focusUser = focused?.dataset.username;

    const items = [conversationItem(ROOM, "# room", store.unreadIn(ROOM), false)];
    for (const name of partners) {
      const key = dmKey(name);
      items.push(conversationItem(key, name, store.unreadIn(key), store.online.has(name)));
    }
    conversations.replaceChildren(...items);
    people.replaceChildren(
      ...everyone.map((user) => {
        const online = store.online.has(user.username);
        const li = make("li");
        const button = make("button", { className: "item", testid: "person" });
        button.type = "button";
        button.dataset.username = user.username;
        button.dataset.online = String(online);
        button.setAttribute("aria-label", `${user.username}, ${online ? "online" : "offline"}: open a direct conversation`);
        const dot = make("span", { className: online ? "dot online" : "dot" });
        dot.setAttribute("aria-hidden", "true");
        button.append(dot, avatar(user), make("span", { className: "label", text: user.username }));
        if (user.bot) button.appendChild(botTag());
        button.addEventListener("click", () => actions.open(dmKey(user.username)));
        li.appendChild(button);
        return li;
      }),
    );
    const again = [...conversations.querySelectorAll("button"), ...people.querySelectorAll("button")].find(
      (el) => (focusKey && el.dataset.key === focusKey) || (focusUser && el.dataset.username === focusUser),
    );
    again?.focus();
  };
}
