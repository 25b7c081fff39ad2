// REST calls to the server that served this page (relative URLs, the key in X-API-Key).

/** @typedef {import("./types.js").Message} Message */
/** @typedef {import("./types.js").User} User */
/** @typedef {import("./types.js").Profile} Profile */

/** A failed call, with the server's stable error code when it sent one. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * @param {string} path
 * @param {{method?: string, key?: string | null, body?: unknown}} [options]
 * @returns {Promise<any>}
 */
async function call(path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (options.key) headers["X-API-Key"] = options.key;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: options.method ?? "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch {
    throw new ApiError(0, "network_error", "The server cannot be reached");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.code ?? "unknown", describe(data, response.status));
  }
  return data;
}

/**
 * A readable message from an error body: `detail` is text, or FastAPI's list of problems.
 * @param {any} data
 * @param {number} status
 */
function describe(data, status) {
  const detail = data?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    return detail.map((d) => String(d?.msg ?? d)).join("; ");
  }
  return `Request failed (HTTP ${status})`;
}

/** @param {string} key @returns {Promise<Profile>} */
export const me = (key) => call("/users/me", { key });

/** @param {string} username @returns {Promise<Profile>} */
export const register = (username) => call("/register", { method: "POST", body: { username } });

/** @param {string} key @returns {Promise<User[]>} */
export const users = (key) => call("/users", { key });

/** @param {string} key @returns {Promise<User[]>} */
export const onlineUsers = (key) => call("/users/online", { key });

/** @param {string} key @returns {Promise<string[]>} */
export const logos = (key) => call("/logos", { key });

/**
 * Room history, newest first from `offset` (the server pages from the newest message).
 * @param {string} key @param {number} offset @param {number} limit
 * @returns {Promise<{messages: Message[], pagination: {total: number, has_more: boolean}}>}
 */
export const roomHistory = (key, offset, limit) =>
  call(`/messages?offset=${offset}&limit=${limit}`, { key });

/**
 * The caller's direct messages (both directions), paged like the room.
 * @param {string} key @param {number} offset @param {number} limit
 * @returns {Promise<{messages: Message[], pagination: {total: number, has_more: boolean}}>}
 */
export const directHistory = (key, offset, limit) =>
  call(`/messages/direct?offset=${offset}&limit=${limit}`, { key });

/** @param {string} key @returns {Promise<Message[]>} */
export const unreadRoom = (key) => call("/messages/unread?limit=1000", { key });

/** @param {string} key @returns {Promise<Message[]>} */
export const unreadDirect = (key) => call("/messages/direct/unread?limit=1000", { key });

/**
 * @param {string} key
 * @returns {Promise<{unread_room_messages: number, unread_direct_messages: number}>}
 */
export const unreadCount = (key) => call("/messages/unread/count", { key });

/**
 * Who has read my messages above `afterSeq`: per-reader "read up to" marks and single receipts.
 * @param {string} key @param {number} afterSeq
 * @returns {Promise<{
 *   room: {read_by: string, up_to_seq: number}[],
 *   direct: {read_by: string, up_to_seq: number}[],
 *   receipts: {message_id: string, seq: number, read_by: string}[],
 * }>}
 */
export const readMarks = (key, afterSeq) =>
  call(`/messages/read-marks?after_seq=${Math.max(0, afterSeq)}`, { key });

/** @param {string} key @param {string} username @returns {Promise<Profile>} */
export const rename = (key, username) =>
  call("/users/me/username", { method: "PATCH", key, body: { username } });

/** @param {string} key @param {string | null} logo */
export const setLogo = (key, logo) =>
  call("/users/me/logo", { method: "PATCH", key, body: { logo } });

/** @param {string} key @returns {Promise<{api_key: string}>} */
export const rotateKey = (key) =>
  call("/users/me/regenerate-api-key", { method: "POST", key });
