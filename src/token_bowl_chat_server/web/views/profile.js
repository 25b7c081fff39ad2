// The profile dialog: change username and logo, rotate the API key (shown once).

import { byId, make } from "./dom.js";
import { copyText } from "./signin.js";

/** @typedef {import("../store.js").Store} Store */

/**
 * @param {Store} store
 * @param {{
 *   rename: (name: string) => Promise<string | null>,
 *   setLogo: (logo: string | null) => Promise<string | null>,
 *   rotate: () => Promise<{key: string} | {error: string}>,
 *   logos: () => Promise<string[]>,
 * }} actions  Each returns an error text, or null on success.
 */
export function profileView(store, actions) {
  const dialog = byId("profile", HTMLDialogElement);
  const status = byId("profile-status", HTMLParagraphElement);
  const renameInput = byId("rename-input", HTMLInputElement);
  const logoSelect = byId("logo-select", HTMLSelectElement);
  const rotated = byId("rotated-key", HTMLDivElement);
  const rotatedValue = byId("rotated-key-value", HTMLOutputElement);

  byId("profile-open", HTMLButtonElement).addEventListener("click", async () => {
    status.textContent = "";
    rotated.hidden = true;
    rotatedValue.value = "";
    renameInput.value = store.me?.username ?? "";
    dialog.showModal();
    const names = await actions.logos().catch(() => []);
    const none = make("option", { text: "(none)" });
    none.value = "";
    logoSelect.replaceChildren(none, ...names.map((name) => {
      const option = make("option", { text: name });
      option.value = name;
      return option;
    }));
    logoSelect.value = store.me?.logo ?? "";
  });
  byId("profile-close", HTMLButtonElement).addEventListener("click", () => dialog.close());

  byId("rename-form", HTMLFormElement).addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = (await actions.rename(renameInput.value.trim())) ?? "Username changed";
  });
  byId("logo-form", HTMLFormElement).addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = (await actions.setLogo(logoSelect.value || null)) ?? "Logo saved";
  });
  byId("rotate-key", HTMLButtonElement).addEventListener("click", async () => {
    const result = await actions.rotate();
    if ("error" in result) {
      status.textContent = result.error;
      return;
    }
    rotatedValue.value = result.key;
    rotated.hidden = false;
    status.textContent = "New key in use; the old one no longer works";
  });
  byId("rotated-key-copy", HTMLButtonElement).addEventListener("click", async () => {
    status.textContent = (await copyText(rotatedValue.value)) ? "Copied" : "Select the key and copy it";
  });
}
