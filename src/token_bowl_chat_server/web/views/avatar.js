// Avatars drawn by the page itself. The server names logos ("claude-color.png", ...) but does
// not ship those images, and we do not copy them: each logo name gets its own generated
// picture instead, a mirrored 5x5 pattern in a colour taken from the name, so the same logo
// looks the same for everyone and different logos look different. A bot shows its emoji;
// anyone else the first letter of their name on a colour taken from the name.

import { make } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const GRID = 5;

/**
 * 32-bit FNV-1a of a string: a stable seed from a name.
 * @param {string} text
 */
export function hashName(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/**
 * A small deterministic stream of numbers in [0, 1) from a seed (mulberry32).
 * @param {number} seed
 */
function stream(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The cells of a logo's pattern: which of the 5x5 squares are filled, mirrored left to right
 * so it reads as a symbol. Never nearly empty.
 * @param {string} logo
 * @returns {boolean[][]}
 */
export function logoCells(logo) {
  const next = stream(hashName(logo));
  const half = Math.ceil(GRID / 2);
  /** @type {boolean[][]} */
  const rows = [];
  for (let y = 0; y < GRID; y += 1) {
    const left = Array.from({ length: half }, () => next() < 0.5);
    rows.push([...left, ...left.slice(0, GRID - half).reverse()]);
  }
  const filled = rows.flat().filter(Boolean).length;
  if (filled < 6) for (const row of rows) row[half - 1] = true;
  return rows;
}

/** The hue (0-359) a name draws in. @param {string} name */
export const hueOf = (name) => hashName(name) % 360;

/**
 * @param {string} logo
 * @returns {SVGSVGElement}
 */
function logoPicture(logo) {
  const hue = hueOf(logo);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 7 7");
  svg.setAttribute("class", "avatar-art");
  const back = document.createElementNS(SVG, "rect");
  back.setAttribute("width", "7");
  back.setAttribute("height", "7");
  back.setAttribute("fill", `hsl(${hue} 60% 92%)`);
  svg.appendChild(back);
  logoCells(logo).forEach((row, y) => {
    row.forEach((on, x) => {
      if (!on) return;
      const cell = document.createElementNS(SVG, "rect");
      cell.setAttribute("x", String(x + 1));
      cell.setAttribute("y", String(y + 1));
      cell.setAttribute("width", "1.02");
      cell.setAttribute("height", "1.02");
      cell.setAttribute("fill", `hsl(${hue} 65% 38%)`);
      svg.appendChild(cell);
    });
  });
  return svg;
}

/**
 * The avatar of a person or bot: their logo's picture, else a bot's emoji, else a letter.
 * Decorative (the name is always written next to it), so hidden from screen readers.
 * @param {{username: string, logo?: string | null, emoji?: string | null}} who
 * @returns {HTMLSpanElement}
 */
export function avatar(who) {
  const el = make("span", { className: "avatar", testid: "avatar" });
  el.setAttribute("aria-hidden", "true");
  if (who.logo) {
    el.classList.add("logo");
    el.dataset.logo = who.logo;
    el.appendChild(logoPicture(who.logo));
  } else if (who.emoji) {
    el.classList.add("emoji");
    el.textContent = who.emoji;
  } else {
    el.textContent = who.username.slice(0, 1).toUpperCase();
    // CSSOM, which the page's Content-Security-Policy allows (inline style attributes it
    // does not).
    el.style.backgroundColor = `hsl(${hueOf(who.username)} 45% 34%)`;
  }
  return el;
}
