// Shapes of the server's JSON, for the type checker only (this module exports nothing).

/**
 * @typedef {object} Message
 * @property {string} id
 * @property {string} from_user_id
 * @property {string} from_username
 * @property {string | null} [from_user_logo]
 * @property {string | null} [from_user_emoji]
 * @property {boolean} [from_user_bot]
 * @property {string | null} [to_user_id]
 * @property {string | null} [to_username]
 * @property {string} content
 * @property {string} message_type
 * @property {string} timestamp
 * @property {number} [seq]
 * @property {string | null} [edited_at]
 */

/**
 * @typedef {object} User
 * @property {string} [id]
 * @property {string} username
 * @property {string} role
 * @property {string | null} [logo]
 * @property {string | null} [emoji]
 * @property {boolean} [bot]
 * @property {boolean} [viewer]
 */

/**
 * @typedef {User & {id: string, api_key: string}} Profile
 */

/**
 * @typedef {{[key: string]: any, type?: string, request_id?: string | number}} Frame
 */

export {};
