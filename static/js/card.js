// One job's card: progress bar, stage, outcome notes, image, download and retry.
"use strict";

import { cancelJob, requestJson } from "./api.js";
import { TERMINAL_STATES, followJob } from "./live.js";

const IMAGE_FORMATS = new Set(["png", "svg", "jpg", "jpeg", "gif", "webp"]);
const NO_WORKER_AFTER_MS = 3000;
const WORKER_CHECK_MS = 2500;
// States in which a job can still be canceled.
const CANCELABLE = new Set(["queued", "deferred", "scheduled", "started"]);
const BADGES = {
  queued: "queued",
  deferred: "waiting",
  scheduled: "scheduled",
  started: "rendering",
  finished: "done",
  failed: "failed",
  stopped: "stopped",
  canceled: "canceled",
};

let workersAnswer = null;
let workersAskedAt = 0;

async function workersAlive() {
  // Several cards may ask at once: share one answer for a moment.
  if (workersAnswer === null || Date.now() - workersAskedAt > WORKER_CHECK_MS - 100) {
    workersAskedAt = Date.now();
    workersAnswer = requestJson("/api/workers").then(({ body }) => body.alive);
  }
  return workersAnswer;
}

function queuedText(position) {
  if (position === null || position === undefined) return "queued";
  if (position === 0) return "queued — next in line";
  return "queued — " + position + " ahead of you";
}

/**
 * A card following job `id`. `spec` (optional) is what was submitted (with `generator` unless
 * a chart), named after its title or else its generator's (`generatorTitles`); `cancelToken` (this
 * browser's submission token) shows a cancel button, and `onTokenDropped()` is told once the
 * token is spent or useless (its job ended or is gone); `onRetry(spec)` resubmits it;
 * `onRemove()` shows a remove button.
 */
export function createJobCard({
  id,
  spec = null,
  cancelToken = null,
  generatorTitles = {},
  onTokenDropped = null,
  onRetry = null,
  onRemove = null,
}) {
  const fragment = document.getElementById("job-card-template").content.cloneNode(true);
  const element = fragment.querySelector(".job-card");
  const part = (selector) => element.querySelector(selector);
  const bar = part(".bar");
  const fill = part(".fill");
  const stage = part(".job-stage");
  const note = part(".job-note");
  const errorText = part(".job-error");
  const badge = part(".job-badge");
  const link = part(".job-link");
  const download = part(".download");
  const retry = part(".retry");
  const cancel = part(".cancel");
  const remove = part(".remove");
  const figure = part(".job-figure");
  const image = part(".job-image");

  let currentSpec = spec;
  let follower = null;
  let queuedSince = null;
  let workerTimer = null;
  let resultShown = false;
  let token = cancelToken;

  element.dataset.jobId = id;
  link.href = "/jobs/" + encodeURIComponent(id);

  function generator() {
    return currentSpec && typeof currentSpec.generator === "string" ? currentSpec.generator : "";
  }

  function showTitle() {
    const title = currentSpec && typeof currentSpec.title === "string" ? currentSpec.title.trim() : "";
    const name = generator();
    link.textContent = title || (name ? generatorTitles[name] || name : "Untitled chart");
    bar.setAttribute("aria-label", "Render progress of " + link.textContent);
    const details = [];
    if (name && title) details.push(generatorTitles[name] || name);
    if (currentSpec && currentSpec.kind) details.push(currentSpec.kind);
    if (currentSpec && currentSpec.format) details.push(String(currentSpec.format).toUpperCase());
    link.title = details.join(" · ");
  }

  function setNote(text) {
    note.textContent = text || "";
    note.hidden = !text;
  }

  function setError(text) {
    errorText.textContent = text || "";
    errorText.hidden = !text;
  }

  function setProgress(fraction, text) {
    const percent = Math.max(0, Math.min(100, Math.round((Number(fraction) || 0) * 100)));
    // CSSOM, not a style attribute: the Content-Security-Policy allows no inline styles.
    fill.style.width = percent + "%";
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", text + " (" + percent + "%)");
    stage.textContent = text;
  }

  function setState(state) {
    element.dataset.state = state;
    badge.textContent = BADGES[state] || state;
  }

  function stopWorkerWatch() {
    if (workerTimer !== null) clearInterval(workerTimer);
    workerTimer = null;
    queuedSince = null;
  }

  async function checkWorkers() {
    if (queuedSince === null || Date.now() - queuedSince < NO_WORKER_AFTER_MS) return;
    let alive;
    try {
      alive = await workersAlive();
    } catch (error) {
      return;
    }
    if (queuedSince === null) return;
    setNote(
      alive === 0
        ? "No worker is running, so this chart waits in the queue until one starts."
        : ""
    );
  }

  function watchWorkers() {
    if (queuedSince !== null) return;
    queuedSince = Date.now();
    workerTimer = setInterval(checkWorkers, WORKER_CHECK_MS / 2);
  }

  function showResult(status) {
    if (resultShown) return;
    resultShown = true;
    const resultUrl = "/api/jobs/" + encodeURIComponent(id) + "/result";
    const format = currentSpec && currentSpec.format ? String(currentSpec.format).toLowerCase() : "";
    download.href = resultUrl + "?download=1";
    download.textContent = "Download " + (format ? format.toUpperCase() : "file");
    download.hidden = false;
    if (format && !IMAGE_FORMATS.has(format)) {
      // A PDF is not embedded: the API answers with frame-ancestors 'none', so no page may frame it.
      setNote("Your " + format.toUpperCase() + " is ready to download.");
      return;
    }
    image.alt = "The rendered " + (generator() ? "image" : "chart") + (link.textContent ? ": " + link.textContent : "");
    image.addEventListener("load", () => {
      figure.hidden = false;
    });
    image.addEventListener("error", () => {
      figure.hidden = true;
      if (format) setNote("The image could not be loaded; it may have expired.");
    });
    image.src = resultUrl;
  }

  function onStatus(status) {
    const state = status.state || "unknown";
    render(state, status);
    if (!element.classList.contains("live")) {
      // Lay out the first state as it is, then animate only the changes that follow.
      void fill.offsetWidth;
      element.classList.add("live");
    }
  }

  function render(state, status) {
    setState(state);
    // Dropped in the same step that shows the end, so no ended card still holds a token; a job that
    // ends without this browser's cancel answer (it finished, the answer was lost) would keep it for good.
    if (token && TERMINAL_STATES.has(state)) dropToken();
    // Only the browser that submitted the job holds its token, and only while it may still end early.
    cancel.hidden = !(token && CANCELABLE.has(state));
    if (state !== "queued") {
      stopWorkerWatch();
      setNote("");
    }
    if (state === "queued") {
      setProgress(status.progress, queuedText(status.position));
      watchWorkers();
    } else if (state === "finished") {
      setProgress(1, "done");
      showResult(status);
    } else if (state === "failed" || state === "stopped") {
      setProgress(status.progress, state === "stopped" ? "stopped" : "failed");
      setError("The render failed: " + (status.error || "no reason was recorded."));
      retry.hidden = !(onRetry && currentSpec);
    } else if (state === "canceled") {
      setProgress(status.progress, "canceled");
      setNote("This job was canceled before it finished.");
      retry.hidden = !(onRetry && currentSpec);
    } else {
      setProgress(status.progress, status.stage || state);
    }
  }

  function onGone() {
    stopWorkerWatch();
    if (token) dropToken();
    setState("gone");
    badge.textContent = "not found";
    if (currentSpec === null) link.textContent = "Unknown chart";
    bar.hidden = true;
    stage.textContent = "";
    setNote("This job is unknown or has expired: finished charts are kept for a limited time.");
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    setError("");
    try {
      const answer = await cancelJob(id, token);
      if (token) dropToken();
      if (answer && answer.withdrawn) {
        setNote("Canceled for you; someone else asked for the same chart, so it goes on.");
      }
    } catch (error) {
      if (token && (error.status === 403 || error.status === 409)) dropToken();
      setError("Could not cancel the chart: " + error.message);
    } finally {
      cancel.disabled = false;
    }
  });

  function dropToken() {
    token = null;
    cancel.hidden = true;
    if (onTokenDropped) onTokenDropped();
  }

  retry.addEventListener("click", async () => {
    retry.disabled = true;
    setError("");
    try {
      await onRetry(currentSpec);
    } catch (error) {
      setError("Could not resubmit the chart: " + error.message);
    } finally {
      retry.disabled = false;
    }
  });

  if (onRemove) {
    remove.hidden = false;
    remove.addEventListener("click", () => {
      stop();
      onRemove();
    });
  }

  async function loadSpec() {
    try {
      const answer = await requestJson("/api/jobs/" + encodeURIComponent(id) + "/spec", { expected: [404] });
      if (answer.status === 200 && answer.body && currentSpec === null) {
        currentSpec = answer.body;
        showTitle();
      }
    } catch (error) {
      // The title is a nicety; the status stream carries what matters.
    }
  }

  function stop() {
    if (follower !== null) follower.stop();
    follower = null;
    stopWorkerWatch();
  }

  async function start() {
    showTitle();
    if (currentSpec === null) await loadSpec();
    follower = followJob(id, { onStatus, onGone });
  }

  return { element, start, stop };
}
