// The page of one job: the same live card, and a retry that opens the new job's page.
"use strict";

import { submitSpec } from "./api.js";
import { createJobCard } from "./card.js";
import { cancelTokenOf, forgetCancelToken, remember } from "./recent.js";

const section = document.getElementById("job");
const slot = document.getElementById("job-slot");

async function retry(spec) {
  const created = await submitSpec(spec);
  remember(created.id, spec, created.cancel_token || null);
  window.location.assign("/jobs/" + encodeURIComponent(created.id));
}

const id = section.dataset.jobId;
const card = createJobCard({
  id,
  cancelToken: cancelTokenOf(id),
  generatorTitles: JSON.parse(section.dataset.generatorTitles || "{}"),
  onTokenDropped: () => forgetCancelToken(id),
  onRetry: retry,
});
slot.appendChild(card.element);
card.start();
