// The start page: the chart form and this browser's recent jobs, each followed live.
"use strict";

import { ApiError, ServiceUnavailable, submitSpec } from "./api.js";
import { createJobCard } from "./card.js";
import { forget, forgetAll, forgetCancelToken, loadRecent, remember } from "./recent.js";

const form = document.getElementById("chart-form");
const formError = document.getElementById("form-error");
const submitButton = document.getElementById("submit-chart");
const list = document.getElementById("recent-jobs");
const empty = document.getElementById("recent-empty");
const clearButton = document.getElementById("clear-recent");
const cards = new Map();

function refreshEmpty() {
  empty.hidden = cards.size > 0;
  clearButton.hidden = cards.size === 0;
}

function addCard(id, spec, { atTop, cancelToken = null }) {
  const card = createJobCard({
    id,
    spec,
    cancelToken,
    onTokenDropped: () => forgetCancelToken(id),
    onRetry: resubmit,
    onRemove: () => {
      item.remove();
      cards.delete(id);
      forget(id);
      refreshEmpty();
    },
  });
  const item = document.createElement("li");
  item.appendChild(card.element);
  if (atTop) list.prepend(item);
  else list.append(item);
  cards.set(id, { card, item });
  refreshEmpty();
  card.start();
}

async function queue(spec) {
  const created = await submitSpec(spec);
  remember(created.id, spec, created.cancel_token || null);
  addCard(created.id, spec, { atTop: true, cancelToken: created.cancel_token || null });
  return created;
}

async function resubmit(spec) {
  await queue(spec);
}

/** The spec the form describes: empty inputs are left to the server's defaults. */
function specFromForm() {
  const spec = {};
  for (const input of form.querySelectorAll("[data-spec-field]")) {
    const type = input.dataset.type;
    if (type === "boolean") {
      spec[input.name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") continue;
    if (type === "integer" || type === "number") {
      const number = Number(raw);
      // Anything that is not a number goes as typed, so the server's 422 names the field.
      spec[input.name] = Number.isFinite(number) ? number : raw;
    } else {
      spec[input.name] = raw;
    }
  }
  return spec;
}

function clearFieldErrors() {
  formError.hidden = true;
  formError.textContent = "";
  for (const message of form.querySelectorAll(".field-error")) {
    message.hidden = true;
    message.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.setAttribute("aria-describedby", (input.getAttribute("aria-describedby") || "").replace(/\s*error-\S+/, "").trim());
  }
}

function showFieldError(field, message) {
  const input = form.querySelector('[data-spec-field][name="' + CSS.escape(field) + '"]');
  const slot = document.getElementById("error-" + field);
  if (!input || !slot) return false;
  slot.textContent = message;
  slot.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + slot.id).trim());
  return true;
}

function showFormError(text) {
  formError.textContent = text;
  formError.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFieldErrors();
  submitButton.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    await queue(specFromForm());
  } catch (error) {
    if (error instanceof ApiError && Array.isArray(error.body.details)) {
      const unplaced = error.body.details.filter((detail) => !showFieldError(String(detail.field), detail.message));
      showFormError(
        unplaced.length
          ? "Could not queue the chart: " + unplaced.map((d) => d.field + ": " + d.message).join("; ")
          : "Please correct the fields marked below."
      );
    } else if (error instanceof ServiceUnavailable) {
      showFormError("The service is unavailable right now; please try again in a moment.");
    } else {
      showFormError("Could not queue the chart: " + error.message);
    }
  } finally {
    submitButton.disabled = false;
    form.removeAttribute("aria-busy");
  }
});

clearButton.addEventListener("click", () => {
  for (const { card, item } of cards.values()) {
    card.stop();
    item.remove();
  }
  cards.clear();
  forgetAll();
  refreshEmpty();
});

for (const item of loadRecent()) {
  addCard(item.id, item.spec || null, { atTop: false, cancelToken: item.cancelToken || null });
}
refreshEmpty();
