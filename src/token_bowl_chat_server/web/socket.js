// The WebSocket to the server that served the page: extended protocol, backoff reconnect,
// gap-free resume from the last delivered `seq`, and replies matched to requests by id.

/** @typedef {import("./types.js").Frame} Frame */
/** @typedef {"connecting" | "connected" | "reconnecting" | "offline" | "stopped"} SocketState */

const PROTOCOL_VERSION = "1.1";
// A normal close is final; after 1008 (the key was rotated or the account removed) the
// page checks its key before trying again.
const NORMAL_CLOSE = 1000;
const KEY_REVOKED = 1008;
const REQUEST_TIMEOUT_MS = 15000;

/**
 * `ws://host/ws` (or `wss:` behind TLS) of the server that served this page.
 * @param {Location} where
 */
export function socketBase(where) {
  return `${where.protocol === "https:" ? "wss:" : "ws:"}//${where.host}/ws`;
}

export class ChatSocket {
  /**
   * @param {{
   *   key: () => string,
   *   onFrame: (frame: Frame) => void,
   *   onState: (state: SocketState, detail: string) => void,
   *   onOpen: () => void,
   *   keyStillValid: () => Promise<boolean>,
   * }} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** Newest `seq` delivered on a socket; the resume point. @type {number | null} */
    this.lastSeq = null;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    this.nextRequest = 1;
    /** @type {Map<string, {resolve: (f: Frame) => void, reject: (e: Error) => void}>} */
    this.pending = new Map();
  }

  /** @returns {boolean} */
  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.drop();
    this.hooks.onState("stopped", "");
  }

  /** Reconnect at once (with the key now current, after a rotation), resuming where we were. */
  reconnectNow() {
    this.stopped = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.drop();
    this.attempt = 0;
    this.open();
  }

  /**
   * The browser says the network is gone: an open socket may look alive for a long while
   * (until a heartbeat fails), so give it up now, say "offline", and keep trying with
   * backoff; the `online` event reconnects at once.
   */
  wentOffline() {
    if (this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.drop();
    void this.retry(true);
  }

  /** Forget the current socket without reacting to its close. */
  drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close(1000);
    }
    this.failPending("connection closed");
  }

  open() {
    // own_messages: copies of what this person sends from other tabs and devices.
    const params = new URLSearchParams({
      api_key: this.hooks.key(),
      protocol_version: PROTOCOL_VERSION,
      own_messages: "1",
    });
    const resuming = this.lastSeq !== null;
    if (resuming) params.set("since_seq", String(this.lastSeq));
    this.hooks.onState(this.attempt === 0 && !resuming ? "connecting" : "reconnecting", "");
    const ws = new WebSocket(`${socketBase(window.location)}?${params}`);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.hooks.onState("connected", "");
      this.hooks.onOpen();
    };
    ws.onmessage = (event) => {
      /** @type {Frame} */
      let frame;
      try {
        frame = JSON.parse(String(event.data));
      } catch {
        return;
      }
      this.receive(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failPending("connection closed");
      if (this.stopped) return;
      if (event.code === NORMAL_CLOSE) {
        this.hooks.onState("stopped", "closed");
        return;
      }
      void this.retry(opened && event.code !== KEY_REVOKED);
    };
  }

  /**
   * Schedule the next attempt with capped, jittered exponential backoff. A handshake that
   * never opened may be a dead key (the browser hides the 401): ask the REST side.
   * @param {boolean} wasOpen
   */
  async retry(wasOpen) {
    if (!wasOpen && !(await this.hooks.keyStillValid())) {
      this.stopped = true;
      this.hooks.onState("stopped", "key_rejected");
      return;
    }
    if (this.stopped) return;
    this.attempt += 1;
    const ceiling = Math.min(10000, 500 * 2 ** Math.min(this.attempt - 1, 5));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.hooks.onState(navigator.onLine === false ? "offline" : "reconnecting", "");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.open();
    }, delay);
  }

  /** @param {Frame} frame */
  receive(frame) {
    const event = frame.type === "message_edited" || frame.type === "message_deleted";
    if (typeof frame.seq === "number" && (event || ("from_username" in frame && !frame.type))) {
      // Deliveries, edits and deletes come in `seq` order; the newest is the resume point.
      this.lastSeq = Math.max(this.lastSeq ?? 0, frame.seq);
    } else if (frame.type === "hello" && typeof frame.last_seq === "number") {
      if (this.lastSeq === null) this.lastSeq = frame.last_seq;
    } else if (frame.type === "resumed" || frame.type === "resume_gap") {
      this.lastSeq = frame.last_seq;
    }
    const id = frame.request_id;
    if (id !== undefined && id !== null) {
      const waiter = this.pending.get(String(id));
      if (waiter) {
        this.pending.delete(String(id));
        waiter.resolve(frame);
      }
      return;
    }
    this.hooks.onFrame(frame);
  }

  /**
   * Send a command without waiting for an answer; false when the socket is not open.
   * @param {Frame} frame
   */
  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Send a command and resolve with the reply that echoes its request_id.
   * @param {Frame} frame
   * @returns {Promise<Frame>}
   */
  request(frame) {
    const id = `w${this.nextRequest++}`;
    return new Promise((resolve, reject) => {
      if (!this.send({ ...frame, request_id: id })) {
        reject(new Error("not connected"));
        return;
      }
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new Error("no reply"));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  /** @param {string} why */
  failPending(why) {
    const waiters = [...this.pending.values()];
    this.pending.clear();
    for (const waiter of waiters) waiter.reject(new Error(why));
  }
}
