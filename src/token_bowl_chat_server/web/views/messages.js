// The open conversation: messages in `seq` order, own messages with their state (pending,
// sent, read), older history loaded as the person scrolls up without losing their place, and
// who is typing.

import { renderMarkdown } from "../markdown.js";
import { ROOM } from "../store.js";
import { avatar } from "./avatar.js";
import { botTag, byId, make } from "./dom.js";

/** @typedef {import("../store.js").Store} Store */
/** @typedef {import("../store.js").Outgoing} Outgoing */
/** @typedef {import("../types.js").Message} Message */

const NEAR_TOP_PX = 80;
const NEAR_BOTTOM_PX = 40;

/**
 * @param {Store} store
 * @param {{
 *   loadOlder: () => void,
 *   bottomSeen: (visible: boolean) => void,
 * }} actions
 */
export function messagesView(store, actions) {
  const scroller = byId("messages", HTMLDivElement);
  const list = byId("message-list", HTMLOListElement);
  const title = byId("conversation-title", HTMLHeadingElement);
  const typing = byId("typing", HTMLParagraphElement);
  const historyStatus = byId("history-status", HTMLParagraphElement);
  const sentinel = byId("bottom-sentinel", HTMLDivElement);
  /** Rendered items by key (message id, or `out:<client id>`). @type {Map<string, HTMLLIElement>} */
  const rendered = new Map();
  let shownConversation = "";

  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < NEAR_TOP_PX) actions.loadOlder();
  });
  new IntersectionObserver((entries) => {
    for (const entry of entries) actions.bottomSeen(entry.isIntersecting);
  }, { root: scroller }).observe(sentinel);

  /** @param {Message} m */
  function statusOf(m) {
    const readers = store.readersOf(m);
    if (readers.length === 0) return { state: "sent", text: "Sent" };
    if (m.to_username) return { state: "read", text: "Read" };
    return { state: "read", text: `Read by ${readers.length}` };
  }

  /**
   * @param {{username: string, logo?: string | null, emoji?: string | null}} author
   * @param {string} content @param {boolean} mine @param {boolean} bot @param {string} when
   */
  function build(author, content, mine, bot, when) {
    const li = make("li", { className: mine ? "message mine" : "message", testid: "message" });
    if (bot) li.dataset.bot = "true";
    const meta = make("div", { className: "meta" });
    meta.append(avatar(author), make("span", { className: "author", text: author.username, testid: "message-author" }));
    if (bot) meta.appendChild(botTag());
    const time = make("time", { text: when ? new Date(when).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "" });
    if (when) time.dateTime = when;
    meta.appendChild(time);
    const body = make("div", { className: "body", testid: "message-body" });
    body.appendChild(renderMarkdown(content));
    li.append(meta, body);
    if (mine) li.appendChild(make("div", { className: "status", testid: "message-status" }));
    return li;
  }

  /** @param {HTMLLIElement} li @param {string} state @param {string} text */
  function setStatus(li, state, text) {
    if (li.dataset.status === state && li.lastElementChild?.textContent === text) return;
    li.dataset.status = state;
    const status = li.querySelector(".status");
    if (status) status.textContent = text;
  }

  return function render() {
    const key = store.current;
    const switched = key !== shownConversation;
    if (switched) {
      rendered.clear();
      list.replaceChildren();
      shownConversation = key;
    }
    title.textContent = key === ROOM ? "# room" : `Direct messages with ${key.slice(3)}`;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    const before = { height: scroller.scrollHeight, top: scroller.scrollTop, first: list.firstElementChild };

    /** @type {HTMLLIElement[]} */
    const wanted = [];
    const live = new Set();
    for (const m of store.conversation(key)) {
      live.add(m.id);
      let li = rendered.get(m.id);
      const mine = store.isMine(m);
      // Rebuilt when its author changed name or logo (a user_updated frame) or it was edited.
      const looks = JSON.stringify([
        m.from_username, m.from_user_logo, m.from_user_emoji, m.from_user_bot, m.content, m.edited_at,
      ]);
      if (li && li.dataset.looks !== looks) {
        li.remove();
        li = undefined;
      }
      if (!li) {
        const author = { username: m.from_username, logo: m.from_user_logo, emoji: m.from_user_emoji };
        li = build(author, m.content, mine, Boolean(m.from_user_bot), m.timestamp);
        li.dataset.id = m.id;
        li.dataset.seq = String(m.seq ?? "");
        li.dataset.looks = looks;
        if (m.edited_at) {
          li.dataset.edited = "true";
          li.querySelector(".meta")?.appendChild(make("span", { className: "edited", text: "(edited)", testid: "message-edited" }));
        }
        rendered.set(m.id, li);
      }
      if (mine) {
        const { state, text } = statusOf(m);
        setStatus(li, state, text);
      }
      wanted.push(li);
    }
    for (const out of store.outgoingIn(key)) {
      const id = `out:${out.clientId}`;
      live.add(id);
      let li = rendered.get(id);
      if (!li) {
        li = build({ username: store.me?.username ?? "", logo: store.me?.logo }, out.content, true, false, "");
        li.dataset.clientId = out.clientId;
        rendered.set(id, li);
      }
      setStatus(li, out.status, out.status === "failed" ? `Not sent: ${out.error ?? "error"}` : "Sending…");
      wanted.push(li);
    }
    for (const [id, li] of rendered) {
      if (!live.has(id)) {
        li.remove();
        rendered.delete(id);
      }
    }
    wanted.forEach((li, i) => {
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
    });

    const history = key === ROOM ? store.history.room : store.history.direct;
    historyStatus.textContent = history.loading
      ? "Loading older messages…"
      : history.hasMore ? "" : "This is the beginning of the conversation.";

    if (switched || atBottom) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (before.first && list.firstElementChild !== before.first) {
      // Older messages went in above: keep the ones the person was reading where they were.
      scroller.scrollTop = before.top + (scroller.scrollHeight - before.height);
    }
    // A short conversation does not fill the view, so no scroll would ever ask for more.
    if (scroller.scrollHeight <= scroller.clientHeight && history.hasMore && !history.loading) {
      actions.loadOlder();
    }

    const typists = store.typistsIn(key);
    typing.textContent =
      typists.length === 0 ? ""
        : typists.length === 1 ? `${typists[0]} is typing…`
          : `${typists.slice(0, -1).join(", ")} and ${typists.at(-1)} are typing…`;
  };
}
