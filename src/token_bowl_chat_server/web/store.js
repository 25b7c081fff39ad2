// The page's only state. Views read it and re-render on change; nothing else keeps state.
// Messages are keyed by id (a message seen twice is stored once) and shown in `seq` order.

/** @typedef {import("./types.js").Message} Message */
/** @typedef {import("./types.js").User} User */
/** @typedef {import("./types.js").Profile} Profile */
/** @typedef {import("./socket.js").SocketState} SocketState */

/** The room's conversation key; a DM's is `dm:<username>`. */
export const ROOM = "room";
/** How long a typing indicator lives without a renewal (the server stops it after 5 s). */
export const TYPING_TTL_MS = 6000;

/**
 * An own message on its way: shown at once, replaced by the stored message when the server
 * acknowledges it (matched by its client_message_id).
 * @typedef {object} Outgoing
 * @property {string} clientId
 * @property {string} content
 * @property {string | null} toUsername
 * @property {"pending" | "failed"} status
 * @property {string} [error]
 */

/** @param {string} username */
export const dmKey = (username) => `dm:${username}`;

export class Store {
  constructor() {
    /** @type {Profile | null} */
    this.me = null;
    /** @type {{state: SocketState, detail: string}} */
    this.connection = { state: "stopped", detail: "" };
    this.current = ROOM;
    /** @type {Map<string, Message>} */
    this.messages = new Map();
    /** @type {Map<string, Outgoing>} */
    this.outgoing = new Map();
    /** Own messages acknowledged this session, by client id -> message id. */
    /** @type {Map<string, string>} */
    this.acknowledged = new Map();
    /** Per-message readers from single receipts. @type {Map<string, Set<string>>} */
    this.readers = new Map();
    /** Reader -> newest `seq` of my room messages they have read (bulk receipts). */
    /** @type {Map<string, number>} */
    this.roomReadUpTo = new Map();
    /** Reader -> newest `seq` of my DMs to them they have read. @type {Map<string, number>} */
    this.directReadUpTo = new Map();
    /** Others' messages I have not read: id -> conversation key and `seq`. */
    /** @type {Map<string, {key: string, seq: number}>} */
    this.unread = new Map();
    /** Typing indicators: `${conversation}|${username}` -> expiry (ms). @type {Map<string, number>} */
    this.typing = new Map();
    /** @type {Set<string>} */
    this.online = new Set();
    /** @type {Map<string, User>} */
    this.users = new Map();
    /** People I have a DM conversation with (from history, deliveries or a started one). */
    /** @type {Set<string>} */
    this.partners = new Set();
    this.history = {
      room: { loaded: 0, hasMore: true, loading: false },
      direct: { loaded: 0, hasMore: true, loading: false },
    };
    /** A notice for the person (errors of their actions). */
    this.notice = "";
    /** @type {Set<() => void>} */
    this.listeners = new Set();
    this.scheduled = false;
  }

  /** @param {() => void} listener */
  subscribe(listener) {
    this.listeners.add(listener);
  }

  /** Tell the views, once per turn however many changes were made. */
  changed() {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      for (const listener of this.listeners) listener();
    });
  }

  reset() {
    const listeners = this.listeners;
    Object.assign(this, new Store());
    this.listeners = listeners;
    this.changed();
  }

  /** The conversation a message belongs to, seen from me. @param {Message} m */
  conversationOf(m) {
    if (!m.to_username) return ROOM;
    return dmKey(m.from_username === this.me?.username ? m.to_username : m.from_username);
  }

  /** @param {Message} m */
  isMine(m) {
    return m.from_user_id === this.me?.id;
  }

  /**
   * Add messages (from history or live); duplicates by id are ignored.
   * @param {Message[]} batch
   * @param {{unread?: boolean}} [how] unread: others' new messages count as unread
   */
  addMessages(batch, how = {}) {
    for (const m of batch) {
      if (this.messages.has(m.id)) continue;
      this.messages.set(m.id, m);
      const key = this.conversationOf(m);
      if (key !== ROOM) this.partners.add(key.slice(3));
      if (how.unread && !this.isMine(m)) this.markUnread(m);
      // A message from a typist ends their indicator here.
      this.typing.delete(`${key}|${m.from_username}`);
    }
    this.changed();
  }

  /**
   * An edit: the message shows its new text (and when it was edited) where it is shown.
   * @param {Message} edited @param {string} editedAt
   */
  applyEdit(edited, editedAt) {
    const shown = this.messages.get(edited.id);
    if (!shown) return;
    this.messages.set(edited.id, { ...shown, content: edited.content, edited_at: editedAt });
    this.changed();
  }

  /** A delete: the message goes, and no longer counts as unread. @param {string} id */
  removeMessage(id) {
    this.messages.delete(id);
    this.unread.delete(id);
    this.readers.delete(id);
    this.changed();
  }

  /** Messages of one conversation in `seq` order (never arrival order). @param {string} key */
  conversation(key) {
    const list = [...this.messages.values()].filter((m) => this.conversationOf(m) === key);
    list.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0) || a.timestamp.localeCompare(b.timestamp));
    return list;
  }

  /** @param {string} key */
  outgoingIn(key) {
    return [...this.outgoing.values()].filter(
      (o) => (o.toUsername ? dmKey(o.toUsername) : ROOM) === key,
    );
  }

  /** Count an incoming message as unread until a mark reads it. @param {Message} m */
  markUnread(m) {
    this.unread.set(m.id, { key: this.conversationOf(m), seq: m.seq ?? 0 });
  }

  /** @param {string} key */
  unreadIn(key) {
    let n = 0;
    for (const entry of this.unread.values()) if (entry.key === key) n += 1;
    return n;
  }

  /** @param {string} key */
  clearUnread(key) {
    for (const [id, entry] of this.unread) {
      if (entry.key === key) this.unread.delete(id);
    }
    this.changed();
  }

  /**
   * The pushed counts are the truth, whichever device marked: where they are lower than what
   * this page counts, the oldest of its unread messages were read (marks read up to a point),
   * so those are dropped until the numbers agree.
   * @param {number} room @param {number} direct
   */
  applyCounts(room, direct) {
    const entries = [...this.unread].sort(([, a], [, b]) => b.seq - a.seq);
    let roomLeft = room;
    let directLeft = direct;
    for (const [id, entry] of entries) {
      if (entry.key === ROOM) {
        if (roomLeft > 0) roomLeft -= 1;
        else this.unread.delete(id);
      } else if (directLeft > 0) {
        directLeft -= 1;
      } else {
        this.unread.delete(id);
      }
    }
    this.changed();
  }

  /**
   * Who has read one of my messages.
   * @param {Message} m
   * @returns {string[]}
   */
  readersOf(m) {
    const names = new Set(this.readers.get(m.id) ?? []);
    const seq = m.seq ?? Infinity;
    if (!m.to_username) {
      for (const [reader, upTo] of this.roomReadUpTo) if (upTo >= seq) names.add(reader);
    } else if ((this.directReadUpTo.get(m.to_username) ?? -1) >= seq) {
      names.add(m.to_username);
    }
    return [...names];
  }

  /** @param {string} messageId @param {string} reader */
  addReader(messageId, reader) {
    const set = this.readers.get(messageId) ?? new Set();
    set.add(reader);
    this.readers.set(messageId, set);
    this.changed();
  }

  /**
   * A bulk receipt: `reader` has read my messages in `scope` up to `seq`.
   * @param {string} reader @param {string} scope @param {number} seq
   */
  addReadUpTo(reader, scope, seq) {
    if (scope === "room" || scope === "all") {
      this.roomReadUpTo.set(reader, Math.max(seq, this.roomReadUpTo.get(reader) ?? -1));
    }
    if (scope === "direct" || scope === "all") {
      this.directReadUpTo.set(reader, Math.max(seq, this.directReadUpTo.get(reader) ?? -1));
    }
    this.changed();
  }

  /** @param {string} key @param {string} username @param {number} now */
  startTyping(key, username, now) {
    this.typing.set(`${key}|${username}`, now + TYPING_TTL_MS);
    this.changed();
  }

  /** @param {string} key @param {string} username */
  stopTyping(key, username) {
    if (this.typing.delete(`${key}|${username}`)) this.changed();
  }

  /** Drop expired indicators; true when something changed. @param {number} now */
  expireTyping(now) {
    let changed = false;
    for (const [k, expiry] of this.typing) {
      if (expiry <= now) {
        this.typing.delete(k);
        changed = true;
      }
    }
    if (changed) this.changed();
    return changed;
  }

  /** @param {string} key */
  typistsIn(key) {
    const prefix = `${key}|`;
    return [...this.typing.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /**
   * Someone's public profile changed (a `user_updated` frame): everything kept under their
   * old name moves to the new one, and their messages show the new name and logo.
   * @param {{user_id: string, username: string, previous_username: string, role: string,
   *   logo?: string | null, emoji?: string | null, bot?: boolean, viewer?: boolean}} update
   */
  applyProfile(update) {
    const before = update.previous_username;
    const after = update.username;
    const logo = update.logo ?? null;
    const emoji = update.emoji ?? null;
    if (this.me && this.me.id === update.user_id) {
      this.me = { ...this.me, username: after, logo, emoji };
    }
    const known = this.users.get(before);
    this.users.delete(before);
    this.users.set(after, {
      ...known,
      id: update.user_id,
      username: after,
      role: update.role,
      logo,
      emoji,
      bot: Boolean(update.bot),
      viewer: Boolean(update.viewer),
    });
    for (const m of this.messages.values()) {
      if (m.from_user_id === update.user_id) {
        m.from_username = after;
        m.from_user_logo = logo;
        m.from_user_emoji = emoji;
        m.from_user_bot = Boolean(update.bot);
      }
      if (m.to_user_id === update.user_id) m.to_username = after;
    }
    if (before !== after) this.renameKeys(before, after);
    this.changed();
  }

  /** Move what is kept by username from one name to another. @param {string} before @param {string} after */
  renameKeys(before, after) {
    const oldKey = dmKey(before);
    const newKey = dmKey(after);
    /** @param {string} key */
    const moved = (key) => (key === oldKey ? newKey : key);
    if (this.online.delete(before)) this.online.add(after);
    if (this.partners.delete(before)) this.partners.add(after);
    for (const out of this.outgoing.values()) if (out.toUsername === before) out.toUsername = after;
    for (const entry of this.unread.values()) entry.key = moved(entry.key);
    this.typing = new Map(
      [...this.typing].map(([k, expiry]) => {
        const split = k.lastIndexOf("|");
        const who = k.slice(split + 1);
        return [`${moved(k.slice(0, split))}|${who === before ? after : who}`, expiry];
      }),
    );
    for (const names of this.readers.values()) {
      if (names.delete(before)) names.add(after);
    }
    for (const marks of [this.roomReadUpTo, this.directReadUpTo]) {
      const seq = marks.get(before);
      if (seq !== undefined) {
        marks.delete(before);
        marks.set(after, Math.max(seq, marks.get(after) ?? -1));
      }
    }
    this.current = moved(this.current);
  }

  /** @param {string} username @param {boolean} online */
  setOnline(username, online) {
    if (online) this.online.add(username);
    else this.online.delete(username);
    this.changed();
  }
}
