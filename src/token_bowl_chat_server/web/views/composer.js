// The message box: Enter sends, Shift+Enter makes a new line; typing renewals go out while
// the person types, at most one every TYPING_RENEW_MS.

import { byId } from "./dom.js";

const TYPING_RENEW_MS = 2000;

/**
 * @param {{send: (text: string) => void, typing: () => void, now?: () => number}} actions
 */
export function composerView(actions) {
  const form = byId("composer", HTMLFormElement);
  const input = byId("composer-input", HTMLTextAreaElement);
  const now = actions.now ?? Date.now;
  let lastTyping = -Infinity;

  function submit() {
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    lastTyping = -Infinity;
    actions.send(text);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", () => {
    if (!input.value) return;
    const t = now();
    if (t - lastTyping >= TYPING_RENEW_MS) {
      lastTyping = t;
      actions.typing();
    }
  });

  return {
    focus: () => input.focus(),
    /** A new conversation: the next keystroke announces typing there at once. */
    reset: () => {
      lastTyping = -Infinity;
    },
  };
}
