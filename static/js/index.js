// The start page: the generator's form (the chart's data and mapping steps, or a form read from
// another generator's spec schema) and this browser's recent jobs, each followed live.
"use strict";

import { ApiError, ServiceUnavailable, requestJson, submitSpec, submitWithCsv } from "./api.js";
import { createJobCard } from "./card.js";
import { createChartMapping } from "./chart-mapping.js";
import { createDataStep } from "./data-step.js";
import { forget, forgetAll, forgetCancelToken, loadRecent, remember } from "./recent.js";

const form = document.getElementById("chart-form");
const kindSelect = document.getElementById("field-kind");
const formError = document.getElementById("form-error");
const submitButton = document.getElementById("submit-chart");
const list = document.getElementById("recent-jobs");
const empty = document.getElementById("recent-empty");
const clearButton = document.getElementById("clear-recent");
const cards = new Map();
const generatorSelect = document.getElementById("generator-choice");
const CHART = "chart";
// Each served generator's title, from the choice's options (the chart's own steps carry none).
const generatorTitles = Object.fromEntries(
  [...(generatorSelect ? generatorSelect.options : [])].map((option) => [option.value, option.dataset.title])
);

function refreshEmpty() {
  empty.hidden = cards.size > 0;
  clearButton.hidden = cards.size === 0;
}

function addCard(id, spec, { atTop, cancelToken = null }) {
  const card = createJobCard({
    id,
    spec,
    cancelToken,
    generatorTitles,
    onTokenDropped: () => forgetCancelToken(id),
    onRetry: (spec) => resubmit(id, spec),
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

/**
 * Queue `spec`, with `csv` when its series name the CSV's columns. The card and the list
 * keep `shown` (the spec as the person asked for it: by default, as sent).
 */
async function queue(spec, { csv = null, shown = spec } = {}) {
  const created = csv === null ? await submitSpec(spec) : await submitWithCsv(spec, csv);
  remember(created.id, shown, created.cancel_token || null);
  addCard(created.id, shown, { atTop: true, cancelToken: created.cancel_token || null });
  return created;
}

function namesColumns(spec) {
  return Array.isArray(spec.series) && spec.series.some((series) => Object.keys(series).some((key) => key.endsWith("_column")));
}

async function resubmit(id, spec) {
  if (!namesColumns(spec)) {
    await queue(spec);
    return;
  }
  // The CSV stays with the job that read it: ask again with the data it filled in.
  const { body } = await requestJson("/api/jobs/" + encodeURIComponent(id) + "/spec");
  await queue(body, { shown: spec });
}

function kind() {
  return kindSelect ? kindSelect.value : "";
}

// Each generator's own mapping step, named by its template: how the data's columns fill its spec.
// A mapping has update(findings), fill(spec, kind), checkChoice(kind), showError(field, message), clearError().
const MAPPINGS = { chart: createChartMapping };
const chartSection = form.querySelector('.generator-form[data-generator="' + CHART + '"]');
const mappingRoot = document.getElementById("mapping");
const mapping = chartSection ? MAPPINGS[mappingRoot.dataset.mapping](mappingRoot) : null;
const dataStep = chartSection
  ? createDataStep(document.getElementById("data-step"), {
      onChange: (findings) => {
        if (findings && findings.checking) return;
        mapping.update(findings);
        mapping.clearError();
        showApplicable();
      },
    })
  : null;

/** The generator the form asks: the one chosen, else the only one served. */
function chosenGenerator() {
  if (generatorSelect) return generatorSelect.value;
  if (chartSection) return CHART;
  const only = form.querySelector(".generator-template");
  return only ? only.dataset.generator : CHART;
}

/** The chosen generator's form, added from its template the first time it is chosen. */
function activeSection() {
  const name = chosenGenerator();
  const existing = form.querySelector('.generator-form[data-generator="' + CSS.escape(name) + '"]');
  if (existing) return existing;
  const template = form.querySelector('.generator-template[data-generator="' + CSS.escape(name) + '"]');
  const section = template.content.firstElementChild.cloneNode(true);
  template.before(section);
  for (const input of section.querySelectorAll('[data-type="object"], [data-type="array"]')) {
    input.addEventListener("input", () => clearFieldError(input));
    input.addEventListener("change", () => checkJson(input));
  }
  return section;
}

/** Show the chosen generator's form, and only it: the others keep what was typed, hidden and not sent. */
function showGenerator() {
  const active = activeSection();
  for (const section of form.querySelectorAll(".generator-form")) {
    section.hidden = section !== active;
    // Disabled, a hidden form's controls are neither checked by the browser nor sent.
    const fieldsets = section.tagName === "FIELDSET" ? [section] : section.querySelectorAll(":scope > fieldset");
    for (const fieldset of fieldsets) fieldset.disabled = section.hidden;
  }
  const option = generatorSelect ? generatorSelect.selectedOptions[0] : null;
  if (option) submitButton.textContent = option.dataset.action;
  clearFieldErrors();
}

/** Show only the inputs that apply to the chosen kind and to the data (or the demo data); hidden ones are not sent. */
function showApplicable() {
  if (!chartSection) return;
  const chosen = kind();
  const hasData = dataStep.current() !== null;
  for (const part of chartSection.querySelectorAll("[data-kinds], [data-when]")) {
    const kinds = part.dataset.kinds;
    const when = part.dataset.when;
    const applies = (!kinds || kinds.split(" ").includes(chosen)) && (!when || (when === "data") === hasData);
    part.hidden = !applies;
    for (const control of part.querySelectorAll("input, select, textarea")) control.disabled = !applies;
  }
  mapping.checkChoice(chosen);
}

/** Whether an object or list field holds what it should (or, if optional, nothing); if not, say why at the field. */
function checkJson(input) {
  const raw = input.value.trim();
  const wanted = input.dataset.type === "array" ? "a JSON list ([...])" : "a JSON object ({...})";
  const required = input.getAttribute("aria-required") === "true";
  clearFieldError(input);
  if (raw === "") {
    if (required) showInputError(input, "Required: " + wanted + ".");
    return !required;
  }
  let value;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    showInputError(input, "Not valid JSON: " + error.message);
    return false;
  }
  const isArray = Array.isArray(value);
  const isObject = value !== null && typeof value === "object" && !isArray;
  if (input.dataset.type === "array" ? !isArray : !isObject) {
    showInputError(input, "Expected " + wanted + ".");
    return false;
  }
  return true;
}

/** The spec the form describes: empty inputs are left to the server's defaults. */
function specFromForm(section) {
  const spec = {};
  for (const input of section.querySelectorAll("[data-spec-field]")) {
    if (input.disabled) continue;
    const type = input.dataset.type;
    if (type === "object" || type === "array") {
      if (input.value.trim() !== "") spec[input.name] = JSON.parse(input.value);
      continue;
    }
    if (type === "boolean" && input.type === "checkbox") {
      spec[input.name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") continue;
    if (type === "boolean") {
      spec[input.name] = raw === "true";
      continue;
    }
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

function errorSlot(input) {
  return input.closest(".field").querySelector(".field-error");
}

function clearFieldError(input) {
  const slot = errorSlot(input);
  slot.hidden = true;
  slot.textContent = "";
  input.removeAttribute("aria-invalid");
  input.setAttribute("aria-describedby", (input.getAttribute("aria-describedby") || "").replace(/\s*error-\S+/, "").trim());
}

function clearFieldErrors() {
  if (dataStep) dataStep.clearServerError();
  if (mapping) mapping.clearError();
  formError.hidden = true;
  formError.textContent = "";
  for (const message of form.querySelectorAll(".field-error")) {
    message.hidden = true;
    message.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) clearFieldError(input);
}

function showInputError(input, message) {
  const slot = errorSlot(input);
  slot.textContent = message;
  slot.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + slot.id).trim());
}

/** Show an API error at the input it names: a dotted path (vega_lite.data.url) at its top-level field. */
function showFieldError(field, message) {
  if (chosenGenerator() === CHART) {
    if (field === "csv") {
      dataStep.showServerError(message);
      return true;
    }
    if (mapping.showError(field, message)) return true;
  }
  const [name, ...inside] = field.split(".");
  const input = activeSection().querySelector('[data-spec-field][name="' + CSS.escape(name) + '"]');
  if (!input) return false;
  showInputError(input, inside.length ? field + ": " + message : message);
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
    const generator = chosenGenerator();
    const section = activeSection();
    if (generator !== CHART) {
      const jsonInputs = [...section.querySelectorAll('[data-type="object"], [data-type="array"]')];
      const faulty = jsonInputs.filter((input) => !checkJson(input));
      if (faulty.length) {
        showFormError("Please correct the fields marked above.");
        faulty[0].focus();
        return;
      }
      await queue({ generator, ...specFromForm(section) });
      return;
    }
    const findings = await dataStep.settled();
    const spec = specFromForm(section);
    if (findings === null) {
      await queue(spec);
    } else {
      mapping.fill(spec, kind());
      await queue(spec, { csv: findings.csv });
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 413) {
      dataStep.showServerError(error.message);
      showFormError("The data is larger than the service accepts.");
    } else if (error instanceof ApiError && Array.isArray(error.body.details)) {
      const unplaced = error.body.details.filter((detail) => !showFieldError(String(detail.field), detail.message));
      showFormError(
        unplaced.length
          ? "Could not queue it: " + unplaced.map((d) => d.field + ": " + d.message).join("; ")
          : "Please correct the fields marked above."
      );
    } else if (error instanceof ApiError && error.body.field && showFieldError(String(error.body.field), error.message)) {
      showFormError("Please correct the fields marked above.");
    } else if (error instanceof ServiceUnavailable) {
      showFormError("The service is unavailable right now; please try again in a moment.");
    } else {
      showFormError("Could not queue it: " + error.message);
    }
  } finally {
    submitButton.disabled = false;
    form.removeAttribute("aria-busy");
  }
});

if (kindSelect) kindSelect.addEventListener("change", showApplicable);
if (generatorSelect) generatorSelect.addEventListener("change", showGenerator);
showGenerator();
showApplicable();

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
