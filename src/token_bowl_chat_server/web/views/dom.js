// Small DOM helpers shared by the views. Text always goes in through textContent.

/**
 * The element with this id; a missing one is a bug in index.html, so fail loudly.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function byId(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`#${id} is missing or not a ${type.name}`);
  return el;
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {{className?: string, text?: string, testid?: string}} [props]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function make(tag, props = {}) {
  const el = document.createElement(tag);
  if (props.className) el.className = props.className;
  if (props.text !== undefined) el.textContent = props.text;
  if (props.testid) el.dataset.testid = props.testid;
  return el;
}

/** The mark on what a bot says or is: automated, not a person. */
export function botTag() {
  const el = make("span", { className: "tag bot", text: "bot", testid: "bot-tag" });
  el.title = "Automated: a bot, not a person";
  return el;
}
