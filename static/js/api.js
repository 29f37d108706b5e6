// Talking to the JSON API: CSRF header on writes, and the "service unavailable" banner.
"use strict";

const PROBE_URL = "/api/workers";
const PROBE_INTERVAL_MS = 5000;

let probeTimer = null;

/** An answer that says the service (or its Redis) is down: a 503, or no answer at all. */
export class ServiceUnavailable extends Error {}

/** An error answer from the API, carrying its JSON body. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || "the server answered " + status);
    this.status = status;
    this.body = body || {};
  }
}

function banner() {
  return document.getElementById("service-banner");
}

function probe() {
  probeTimer = null;
  fetch(PROBE_URL, { headers: { Accept: "application/json" }, cache: "no-store" })
    .then((response) => (response.ok ? serviceUp() : serviceDown()))
    .catch(() => serviceDown());
}

/** Show the banner and keep probing until the service answers again. */
export function serviceDown() {
  const element = banner();
  if (element) element.hidden = false;
  if (probeTimer === null) probeTimer = setTimeout(probe, PROBE_INTERVAL_MS);
}

/** Hide the banner: a request has just been answered. */
export function serviceUp() {
  const element = banner();
  if (element) element.hidden = true;
  if (probeTimer !== null) {
    clearTimeout(probeTimer);
    probeTimer = null;
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function readJson(response) {
  try {
    return await response.json();
  } catch (error) {
    return null;
  }
}

/**
 * Fetch a JSON endpoint. Resolves to {status, body}; throws ServiceUnavailable when the
 * service cannot answer, ApiError for any other error status except those in `expected`.
 */
export async function requestJson(url, { method = "GET", body, form, expected = [], headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  const options = { method, headers, cache: "no-store", credentials: "same-origin" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  } else if (form !== undefined) {
    // The browser writes the multipart Content-Type, with its boundary.
    options.body = form;
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    serviceDown();
    throw new ServiceUnavailable("the service cannot be reached");
  }
  if (response.status === 503 || response.status === 502 || response.status === 504) {
    serviceDown();
    throw new ServiceUnavailable("the service is unavailable");
  }
  serviceUp();
  const parsed = await readJson(response);
  if (!response.ok && !expected.includes(response.status)) throw new ApiError(response.status, parsed);
  return { status: response.status, body: parsed };
}

/** Queue a render of `spec`; resolves to the API's {id, status_url, result_url, cancel_token}. */
export async function submitSpec(spec) {
  const { body } = await requestJson("/api/jobs", { method: "POST", body: spec });
  return body;
}

/**
 * Queue a render of `spec` whose series name columns of `csv` (a Blob of CSV text): the API's
 * multipart form, a `spec` part and a `csv` file part.
 */
export async function submitWithCsv(spec, csv) {
  const form = new FormData();
  form.append("spec", JSON.stringify(spec));
  form.append("csv", csv, "data.csv");
  const { body } = await requestJson("/api/jobs", { method: "POST", form });
  return body;
}

/**
 * Cancel job `id` with this browser's submission token: resolves to the job's status, with
 * `withdrawn: true` when other submitters still want the job (it then goes on).
 */
export async function cancelJob(id, cancelToken) {
  const { body } = await requestJson("/api/jobs/" + encodeURIComponent(id), {
    method: "DELETE",
    headers: { "X-Cancel-Token": cancelToken },
  });
  return body;
}
