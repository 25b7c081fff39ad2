// Sign in with a key, or register a username and see the new key once (with a copy button).

import { byId } from "./dom.js";

/**
 * @param {{
 *   signIn: (key: string, remember: boolean) => Promise<string | null>,
 *   register: (username: string) => Promise<{key: string} | {error: string}>,
 * }} actions  Each returns an error text for the person, or null / the new key.
 */
export function signinView(actions) {
  const error = byId("signin-error", HTMLParagraphElement);
  const keyInput = byId("signin-key", HTMLInputElement);
  const remember = byId("signin-remember", HTMLInputElement);
  const username = byId("register-username", HTMLInputElement);
  const newKey = byId("new-key", HTMLElement);
  const newKeyValue = byId("new-key-value", HTMLOutputElement);
  const copied = byId("new-key-copied", HTMLSpanElement);
  const newKeyRemember = byId("new-key-remember", HTMLInputElement);
  const forms = [byId("signin-form", HTMLFormElement), byId("register-form", HTMLFormElement)];

  byId("signin-form", HTMLFormElement).addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    error.textContent = (await actions.signIn(keyInput.value.trim(), remember.checked)) ?? "";
  });

  byId("register-form", HTMLFormElement).addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const result = await actions.register(username.value.trim());
    if ("error" in result) {
      error.textContent = result.error;
      return;
    }
    newKeyValue.value = result.key;
    copied.textContent = "";
    for (const form of forms) form.hidden = true;
    newKey.hidden = false;
    byId("new-key-copy", HTMLButtonElement).focus();
  });

  byId("new-key-copy", HTMLButtonElement).addEventListener("click", async () => {
    copied.textContent = (await copyText(newKeyValue.value)) ? "Copied" : "Select the key and copy it";
  });

  byId("new-key-continue", HTMLButtonElement).addEventListener("click", async () => {
    const key = newKeyValue.value;
    error.textContent = (await actions.signIn(key, newKeyRemember.checked)) ?? "";
  });

  return {
    /** Show the sign-in page with a message, leaving what the person typed. @param {string} message */
    notice(message) {
      error.textContent = message;
      byId("signin", HTMLElement).hidden = false;
      byId("chat", HTMLDivElement).hidden = true;
    },
    /** @param {string} [message] */
    show(message) {
      keyInput.value = "";
      newKeyValue.value = "";
      newKey.hidden = true;
      for (const form of forms) form.hidden = false;
      error.textContent = message ?? "";
      byId("signin", HTMLElement).hidden = false;
      byId("chat", HTMLDivElement).hidden = true;
      keyInput.focus();
    },
  };
}

/** @param {string} text @returns {Promise<boolean>} */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
