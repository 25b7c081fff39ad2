// The page's entry point: signs in, wires the socket's frames into the store, and the views'
// actions into REST calls and socket commands.

import * as api from "./api.js";
import { ChatSocket } from "./socket.js";
import { ROOM, Store, dmKey } from "./store.js";
import { composerView } from "./views/composer.js";
import { byId } from "./views/dom.js";
import { messagesView } from "./views/messages.js";
import { profileView } from "./views/profile.js";
import { sidebarView } from "./views/sidebar.js";
import { signinView } from "./views/signin.js";
import { statusView } from "./views/status.js";

/** @typedef {import("./types.js").Frame} Frame */
/** @typedef {import("./types.js").Message} Message */

const KEY_NAME = "token-bowl-chat.api-key";
const ROOM_PAGE = 50;
const DIRECT_PAGE = 100;

const store = new Store();
/** The API key in use; kept in localStorage only with "remember me". */
let apiKey = "";
let remembered = false;
/** @type {ChatSocket | null} */
let socket = null;
/** History may be read only once the socket is live, so nothing falls between the two. */
let historyOpen = false;
/** A key rotation in flight: a 1008 close meanwhile is ours, not a revoked key. */
/** @type {Promise<unknown> | null} */
let rotation = null;
let bottomVisible = false;
let marking = false;

// --- the key -------------------------------------------------------------------------------

function storedKey() {
  const local = localStorage.getItem(KEY_NAME);
  if (local) return { key: local, remember: true };
  const session = sessionStorage.getItem(KEY_NAME);
  return session ? { key: session, remember: false } : null;
}

/** @param {string} key @param {boolean} remember */
function keepKey(key, remember) {
  remembered = remember;
  apiKey = key;
  localStorage.removeItem(KEY_NAME);
  sessionStorage.removeItem(KEY_NAME);
  (remember ? localStorage : sessionStorage).setItem(KEY_NAME, key);
}

/** @param {unknown} error */
function explain(error) {
  if (error instanceof api.ApiError) {
    if (error.code === "authentication_required") return "That API key was not accepted.";
    return error.message;
  }
  return String(error);
}

// --- sign in and out -----------------------------------------------------------------------

/** @param {string} key @param {boolean} remember @returns {Promise<string | null>} */
async function signIn(key, remember) {
  if (!key) return "Enter your API key.";
  try {
    const me = await api.me(key);
    keepKey(key, remember);
    start(me);
    return null;
  } catch (error) {
    return explain(error);
  }
}

/** @param {string} username */
async function register(username) {
  try {
    const created = await api.register(username);
    return { key: created.api_key };
  } catch (error) {
    return { error: explain(error) };
  }
}

/** @param {string} [why] */
function signOut(why) {
  socket?.stop();
  socket = null;
  apiKey = "";
  localStorage.removeItem(KEY_NAME);
  sessionStorage.removeItem(KEY_NAME);
  store.reset();
  signin.show(why);
}

/** @param {import("./types.js").Profile} me */
function start(me) {
  socket?.stop();
  store.reset();
  store.me = me;
  historyOpen = false;
  byId("signin", HTMLElement).hidden = true;
  byId("chat", HTMLDivElement).hidden = false;
  socket = new ChatSocket({
    key: () => apiKey,
    onFrame,
    onOpen,
    onState: (state, detail) => {
      store.connection = { state, detail };
      store.changed();
      if (detail === "key_rejected") signOut("Your API key is no longer valid. Sign in again.");
    },
    keyStillValid: async () => {
      if (rotation) await rotation.catch(() => null);
      try {
        await api.me(apiKey);
        return true;
      } catch (error) {
        // Only a refusal of the key ends the session; a server that is down is retried.
        return !(error instanceof api.ApiError && error.status === 401);
      }
    },
  });
  socket.start();
  void refreshUsers();
  composer.focus();
}

// --- live frames ---------------------------------------------------------------------------

function onOpen() {
  // Sends that had no answer go again with the same client_message_id: stored once.
  for (const out of store.outgoing.values()) if (out.status === "pending") void transmit(out.clientId);
}

/**
 * The server sends `hello` once this connection gets live deliveries and presence frames:
 * lists read from here on miss nothing in between.
 */
async function onHello() {
  void refreshOnline();
  if (!historyOpen) {
    historyOpen = true;
    await Promise.all([loadOlder("room"), loadOlder("direct"), loadUnread()]);
  }
}

/** @param {Frame} frame */
function onFrame(frame) {
  if (!frame.type && typeof frame.from_username === "string") {
    const delivered = /** @type {Message} */ (/** @type {unknown} */ (frame));
    // A copy of my own message (sent here, in another tab or on another device): the one
    // sent here is pending under its client_message_id until now.
    if (store.isMine(delivered) && typeof frame.client_message_id === "string") {
      store.outgoing.delete(frame.client_message_id);
    }
    store.addMessages([delivered], { unread: true });
    return;
  }
  switch (frame.type) {
    case "hello":
      void onHello();
      break;
    case "ping":
      socket?.send({ type: "pong" });
      break;
    case "read_receipt":
      store.addReader(frame.message_id, frame.read_by);
      break;
    case "read_up_to":
      store.addReadUpTo(frame.read_by, frame.scope, frame.up_to_seq);
      break;
    case "unread_count":
      store.applyCounts(frame.unread_room_messages, frame.unread_direct_messages);
      break;
    case "typing":
      if (frame.username !== store.me?.username) {
        store.startTyping(frame.to_username ? dmKey(frame.username) : ROOM, frame.username, Date.now());
      }
      break;
    case "typing_stopped":
      store.stopTyping(frame.to_username ? dmKey(frame.username) : ROOM, frame.username);
      break;
    case "presence":
      if (!store.users.has(frame.username)) void refreshUsers();
      store.setOnline(frame.username, frame.online);
      break;
    case "message_edited":
      store.applyEdit(frame.message, frame.edited_at);
      break;
    case "message_deleted":
      store.removeMessage(frame.message_id);
      break;
    case "user_updated":
      store.applyProfile(/** @type {any} */ (frame));
      break;
    case "resumed":
      // The replay holds others' messages only, and no receipts: read my own messages sent
      // elsewhere meanwhile from the history, then the marks made while the socket was down.
      void catchUpOwn(frame.since_seq).then(loadReadMarks);
      break;
    case "resume_gap":
      // The server does not know our place (its database was replaced by an older one):
      // what the page holds may no longer exist, and what was sent meanwhile was not
      // replayed. Read everything again, as on a fresh start.
      store.messages.clear();
      store.unread.clear();
      store.readers.clear();
      store.roomReadUpTo.clear();
      store.directReadUpTo.clear();
      store.history.room = { loaded: 0, hasMore: true, loading: false };
      store.history.direct = { loaded: 0, hasMore: true, loading: false };
      store.changed();
      void Promise.all([loadOlder("room"), loadOlder("direct"), loadUnread()]);
      break;
    default:
      break;
  }
}

async function refreshUsers() {
  try {
    const users = await api.users(apiKey);
    store.users = new Map(users.map((u) => [u.username, u]));
    store.changed();
  } catch {
    // The list fills in on the next presence change.
  }
}

async function refreshOnline() {
  try {
    const online = await api.onlineUsers(apiKey);
    store.online = new Set(online.map((u) => u.username));
    store.changed();
  } catch {
    // Presence frames keep it current from here.
  }
}

/** Which of others' messages I have not read, for the per-conversation badges. */
async function loadUnread() {
  try {
    const [room, direct] = await Promise.all([api.unreadRoom(apiKey), api.unreadDirect(apiKey)]);
    for (const m of [...room, ...direct]) {
      store.markUnread(m);
      const key = store.conversationOf(m);
      if (key !== ROOM) store.partners.add(key.slice(3));
    }
    store.changed();
  } catch {
    // Badges then count only what arrives live.
  }
}

/**
 * Read marks on my messages made before the page saw them live (before it was opened, or
 * while the socket was down), for every message the page holds.
 */
async function loadReadMarks() {
  const mine = [...store.messages.values()].filter((m) => store.isMine(m) && typeof m.seq === "number");
  if (mine.length === 0 || !apiKey) return;
  const oldest = Math.min(...mine.map((m) => m.seq ?? 0));
  try {
    const marks = await api.readMarks(apiKey, oldest - 1);
    for (const mark of marks.room) store.addReadUpTo(mark.read_by, "room", mark.up_to_seq);
    for (const mark of marks.direct) store.addReadUpTo(mark.read_by, "direct", mark.up_to_seq);
    for (const receipt of marks.receipts) store.addReader(receipt.message_id, receipt.read_by);
  } catch {
    // The marks then come only live, as before.
  }
}

/**
 * Messages after `sinceSeq` from the history, newest page first, until the pages reach back
 * to it: what a resume's replay leaves out (my own messages sent from elsewhere).
 * @param {number} sinceSeq
 */
async function catchUpOwn(sinceSeq) {
  for (const which of /** @type {const} */ (["room", "direct"])) {
    const size = which === "room" ? ROOM_PAGE : DIRECT_PAGE;
    for (let offset = 0; apiKey; offset += size) {
      let page;
      try {
        page = which === "room"
          ? await api.roomHistory(apiKey, offset, size)
          : await api.directHistory(apiKey, offset, size);
      } catch {
        break; // the next resume tries again
      }
      store.addMessages(page.messages.filter((m) => (m.seq ?? 0) > sinceSeq));
      const reachedBack = page.messages.some((m) => (m.seq ?? 0) <= sinceSeq);
      if (reachedBack || !page.pagination.has_more) break;
    }
  }
}

/**
 * The next page of older history. Pages count from the newest message, and the messages
 * held are all the newest ones, so the count held is the offset.
 * @param {"room" | "direct"} which
 */
async function loadOlder(which) {
  const state = store.history[which];
  if (!historyOpen || state.loading || !state.hasMore || !apiKey) return;
  state.loading = true;
  store.changed();
  try {
    const held = [...store.messages.values()].filter((m) => (which === "room") === !m.to_username).length;
    const page = which === "room"
      ? await api.roomHistory(apiKey, held, ROOM_PAGE)
      : await api.directHistory(apiKey, held, DIRECT_PAGE);
    store.addMessages(page.messages);
    state.hasMore = page.pagination.has_more;
    if (page.messages.some((m) => store.isMine(m))) void loadReadMarks();
  } catch (error) {
    store.notice = `Could not load history: ${explain(error)}`;
  } finally {
    state.loading = false;
    store.changed();
  }
}

// --- sending, typing, reading --------------------------------------------------------------

function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `web-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** @param {string} text */
function send(text) {
  const to = store.current === ROOM ? null : store.current.slice(3);
  const clientId = newClientId();
  store.outgoing.set(clientId, { clientId, content: text, toUsername: to, status: "pending" });
  store.notice = "";
  store.changed();
  void transmit(clientId);
}

/** @param {string} clientId */
async function transmit(clientId) {
  const out = store.outgoing.get(clientId);
  if (!out || !socket) return;
  /** @type {Frame} */
  const frame = { type: "message", content: out.content, client_message_id: clientId };
  if (out.toUsername) frame.to_username = out.toUsername;
  let reply;
  try {
    reply = await socket.request(frame);
  } catch {
    return; // Still pending: it goes again when the socket is back.
  }
  if (reply.type === "message_sent") {
    store.outgoing.delete(clientId);
    store.addMessages([reply.message]);
  } else {
    out.status = "failed";
    out.error = String(reply.error ?? "refused");
    store.changed();
  }
}

function typing() {
  const to = store.current === ROOM ? null : store.current.slice(3);
  socket?.send(to ? { type: "typing", to_username: to } : { type: "typing" });
}

/** Mark the open conversation read in one call once its newest message is in view. */
function markReadIfSeen() {
  if (!bottomVisible || marking || document.visibilityState !== "visible" || !socket?.isOpen) return;
  const key = store.current;
  const ids = [...store.unread].filter(([, entry]) => entry.key === key).map(([id]) => id);
  if (ids.length === 0) return;
  marking = true;
  const frame = key === ROOM ? { type: "mark_room_read" } : { type: "mark_direct_read", from_username: key.slice(3) };
  socket
    .request(frame)
    .then((reply) => {
      if (reply.type === "error") return;
      for (const id of ids) store.unread.delete(id);
      store.changed();
    })
    .catch(() => null)
    .finally(() => {
      marking = false;
    });
}

/** @param {string} key */
function open(key) {
  store.current = key;
  if (key !== ROOM) store.partners.add(key.slice(3));
  composer.reset();
  setMenu(false);
  store.changed();
  composer.focus();
}

// --- profile -------------------------------------------------------------------------------

/** @param {string} name */
async function rename(name) {
  try {
    store.me = await api.rename(apiKey, name);
    store.changed();
    return null;
  } catch (error) {
    return explain(error);
  }
}

/** @param {string | null} logo */
async function setLogo(logo) {
  try {
    await api.setLogo(apiKey, logo);
    if (store.me) store.me.logo = logo;
    return null;
  } catch (error) {
    return explain(error);
  }
}

async function rotate() {
  const pending = api.rotateKey(apiKey);
  rotation = pending;
  try {
    const { api_key: key } = await pending;
    keepKey(key, remembered);
    socket?.reconnectNow();
    return { key };
  } catch (error) {
    return { error: explain(error) };
  } finally {
    rotation = null;
  }
}

// --- wiring --------------------------------------------------------------------------------

/** @param {boolean} shown */
function setMenu(shown) {
  byId("chat", HTMLDivElement).classList.toggle("menu-open", shown);
  byId("menu-toggle", HTMLButtonElement).setAttribute("aria-expanded", String(shown));
}

const signin = signinView({ signIn, register });
const composer = composerView({ send, typing });
const views = [
  statusView(store),
  sidebarView(store, { open }),
  messagesView(store, {
    loadOlder: () => void loadOlder(store.current === ROOM ? "room" : "direct"),
    bottomSeen: (visible) => {
      bottomVisible = visible;
      markReadIfSeen();
    },
  }),
];
profileView(store, { rename, setLogo, rotate, logos: () => api.logos(apiKey) });

store.subscribe(() => {
  for (const render of views) render();
  const total = store.unread.size;
  document.title = total > 0 ? `(${total}) Token Bowl Chat` : "Token Bowl Chat";
  markReadIfSeen();
});
setInterval(() => store.expireTyping(Date.now()), 1000);
document.addEventListener("visibilitychange", markReadIfSeen);
byId("sign-out", HTMLButtonElement).addEventListener("click", () => signOut());
byId("menu-toggle", HTMLButtonElement).addEventListener("click", () => {
  setMenu(!byId("chat", HTMLDivElement).classList.contains("menu-open"));
});
window.addEventListener("online", () => socket?.reconnectNow());
window.addEventListener("offline", () => socket?.wentOffline());
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && byId("chat", HTMLDivElement).classList.contains("menu-open")) {
    setMenu(false);
    byId("menu-toggle", HTMLButtonElement).focus();
  }
});

/**
 * Sign in with the key kept from an earlier visit. Only a refused key is forgotten: a server
 * that is down (restarting, say) is asked again with backoff.
 * @param {{key: string, remember: boolean}} saved
 * @param {number} attempt
 */
async function resumeSession(saved, attempt) {
  if (apiKey) return; // signed in by hand meanwhile
  try {
    const me = await api.me(saved.key);
    if (apiKey) return;
    keepKey(saved.key, saved.remember);
    start(me);
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 401) {
      signOut("Your saved API key is no longer valid. Sign in again.");
      return;
    }
    signin.notice(`${explain(error)}; trying again…`);
    setTimeout(() => void resumeSession(saved, attempt + 1), Math.min(10000, 500 * 2 ** attempt));
  }
}

const saved = storedKey();
if (saved) {
  void resumeSession(saved, 0);
} else {
  signin.show();
}
