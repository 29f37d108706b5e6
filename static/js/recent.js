// This browser's recent jobs, kept in localStorage (newest first, bounded).
"use strict";

const KEY = "plotjobs.recent";
const LIMIT = 20;
// A spec that carries its data can be large: it is not kept, and its card asks the job for it.
const SPEC_CHARACTERS = 16 * 1024;

/** The remembered jobs: [{id, spec, submittedAt, cancelToken}]. */
export function loadRecent() {
  try {
    const stored = JSON.parse(window.localStorage.getItem(KEY) || "[]");
    return Array.isArray(stored) ? stored.filter((item) => item && typeof item.id === "string") : [];
  } catch (error) {
    return [];
  }
}

function save(items) {
  try {
    window.localStorage.setItem(KEY, JSON.stringify(items.slice(0, LIMIT)));
  } catch (error) {
    // Storage full or disabled (private mode): the list simply is not remembered.
  }
}

/** Remember a new job at the top of the list, with the token that lets this browser cancel it. */
export function remember(id, spec, cancelToken = null) {
  const kept = JSON.stringify(spec).length <= SPEC_CHARACTERS ? spec : null;
  const item = { id, spec: kept, submittedAt: new Date().toISOString(), cancelToken };
  save([item, ...loadRecent().filter((other) => other.id !== id)]);
}

/** The cancel token this browser holds for job `id`, or null. */
export function cancelTokenOf(id) {
  const item = loadRecent().find((other) => other.id === id);
  return item && typeof item.cancelToken === "string" ? item.cancelToken : null;
}

/** Drop the cancel token of job `id`: it has been used, or its job has ended. */
export function forgetCancelToken(id) {
  save(loadRecent().map((item) => (item.id === id ? { ...item, cancelToken: null } : item)));
}

/** Forget one job. */
export function forget(id) {
  save(loadRecent().filter((item) => item.id !== id));
}

/** Forget every job. */
export function forgetAll() {
  save([]);
}
