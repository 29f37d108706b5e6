// Following one job live: the server's event stream when it has one, else polling with backoff.
"use strict";

import { requestJson, serviceUp } from "./api.js";

/** States after which a job never changes again. */
// The end states, as the server lists them in the page (plotjobs/states.py).
const terminalMeta = document.querySelector('meta[name="plotjobs-terminal-states"]');
export const TERMINAL_STATES = new Set(terminalMeta ? terminalMeta.content.split(" ") : []);

const POLL_MIN_MS = 400;
const POLL_MAX_MS = 5000;
const POLL_ERROR_MAX_MS = 15000;
// Browsers allow about six HTTP/1.1 connections per server; streams beyond this poll instead.
const MAX_STREAMS = 4;

let openStreams = 0;

function statusUrl(id) {
  return "/api/jobs/" + encodeURIComponent(id);
}

/**
 * Call `onStatus(status)` with every new state of job `id` until it is terminal, or
 * `onGone(body)` once if the job is unknown or expired. Returns {stop}.
 */
export function followJob(id, { onStatus, onGone }) {
  let stopped = false;
  let source = null;
  let timer = null;
  let delay = POLL_MIN_MS;
  let lastSeen = "";

  function closeStream() {
    if (source === null) return;
    source.close();
    source = null;
    openStreams -= 1;
  }

  function stop() {
    stopped = true;
    closeStream();
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  function deliver(status) {
    if (stopped) return;
    if (TERMINAL_STATES.has(status.state)) stop();
    onStatus(status);
  }

  function schedule() {
    if (!stopped) timer = setTimeout(poll, delay);
  }

  async function poll() {
    timer = null;
    if (stopped) return;
    let answer;
    try {
      answer = await requestJson(statusUrl(id), { expected: [404] });
    } catch (error) {
      // The service is down (the banner says so) or answered oddly: ask again, less often.
      delay = Math.min(Math.max(delay, POLL_MIN_MS) * 2, POLL_ERROR_MAX_MS);
      schedule();
      return;
    }
    if (answer.status === 404) {
      stop();
      onGone(answer.body || {});
      return;
    }
    const status = answer.body;
    const seen = [status.state, status.progress, status.stage, status.position].join("|");
    // Back off while nothing changes; look again soon after something did.
    delay = seen === lastSeen ? Math.min(delay * 1.5, POLL_MAX_MS) : POLL_MIN_MS;
    lastSeen = seen;
    deliver(status);
    schedule();
  }

  function stream() {
    if (typeof window.EventSource !== "function" || openStreams >= MAX_STREAMS) {
      poll();
      return;
    }
    source = new EventSource(statusUrl(id) + "/events");
    openStreams += 1;
    source.addEventListener("status", (event) => {
      let status;
      try {
        status = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      serviceUp();
      deliver(status);
    });
    source.addEventListener("error", () => {
      if (stopped) return;
      // No stream on this server, an unknown job, or a broken connection: polling sorts
      // these apart (404, 503, network error) and carries on until a terminal state.
      closeStream();
      poll();
    });
  }

  stream();
  return { stop };
}
