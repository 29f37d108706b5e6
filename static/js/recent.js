// This browser's recent jobs, kept in localStorage (newest first, bounded).
"use strict";

const KEY = "plotjobs.recent";
const LIMIT = 20;

/** The remembered jobs: [{id, spec, submittedAt}]. */
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

/** Remember a new job at the top of the list. */
export function remember(id, spec) {
  save([{ id, spec, submittedAt: new Date().toISOString() }, ...loadRecent().filter((item) => item.id !== id)]);
}

/** Forget one job. */
export function forget(id) {
  save(loadRecent().filter((item) => item.id !== id));
}

/** Forget every job. */
export function forgetAll() {
  save([]);
}
