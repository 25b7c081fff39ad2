// A small, safe markdown: builds DOM nodes from text, so nothing in a message is ever parsed
// as HTML. Supported: paragraphs and line breaks, ```code blocks```, `code`, **bold**,
// *italic*, [text](url) and bare http(s) URLs. Links open only http:, https: and mailto:.

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const INLINE =
  /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\s][^*\n]*\*)|(\[[^\]\n]+\]\([^()\s]+\))|(https?:\/\/[^\s<>"]*[^\s<>".,;:!?)\]'])/g;
const MAX_DEPTH = 3;

/**
 * The URL if it is safe to link to, else null.
 * @param {string} href
 */
export function safeUrl(href) {
  // Absolute links only, with the scheme spelled out: a relative or scheme-relative one
  // would point into this server or wherever the page happens to be served from.
  if (!/^(https?:\/\/|mailto:)/i.test(href)) return null;
  let url;
  try {
    url = new URL(href);
  } catch {
    return null;
  }
  return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
}

/**
 * @param {string} text @param {string} href
 * @returns {Node}
 */
function link(text, href) {
  const safe = safeUrl(href);
  if (safe === null) return document.createTextNode(text === href ? href : `${text} (${href})`);
  const a = document.createElement("a");
  a.href = safe;
  a.textContent = text;
  a.rel = "noopener noreferrer nofollow";
  a.target = "_blank";
  return a;
}

/**
 * @param {Node} parent @param {string} text @param {number} depth
 */
function appendInline(parent, text, depth) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const index = match.index ?? 0;
    if (index > last) parent.appendChild(document.createTextNode(text.slice(last, index)));
    const [token, code, bold, italic, labelled] = match;
    if (code) {
      const el = document.createElement("code");
      el.textContent = code.slice(1, -1);
      parent.appendChild(el);
    } else if ((bold || italic) && depth < MAX_DEPTH) {
      const el = document.createElement(bold ? "strong" : "em");
      appendInline(el, bold ? bold.slice(2, -2) : token.slice(1, -1), depth + 1);
      parent.appendChild(el);
    } else if (labelled) {
      const split = labelled.indexOf("](");
      parent.appendChild(link(labelled.slice(1, split), labelled.slice(split + 2, -1)));
    } else if (bold || italic) {
      parent.appendChild(document.createTextNode(token));
    } else {
      parent.appendChild(link(token, token));
    }
    last = index + token.length;
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

/**
 * Render a message's text.
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function renderMarkdown(text) {
  const out = document.createDocumentFragment();
  const parts = text.split(/^```[^\n]*\n?/m);
  parts.forEach((part, i) => {
    if (i % 2 === 1 && i < parts.length - 1) {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = part.replace(/\n$/, "");
      pre.appendChild(code);
      out.appendChild(pre);
      return;
    }
    // An unclosed fence is shown as text, not swallowed.
    const body = i % 2 === 1 ? "```" + part : part;
    for (const paragraph of body.split(/\n{2,}/)) {
      if (!paragraph.trim()) continue;
      const p = document.createElement("p");
      paragraph.split("\n").forEach((line, n) => {
        if (n > 0) p.appendChild(document.createElement("br"));
        appendInline(p, line, 0);
      });
      out.appendChild(p);
    }
  });
  return out;
}
