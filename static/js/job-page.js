// The page of one job: the same live card, and a retry that opens the new job's page.
"use strict";

import { submitSpec } from "./api.js";
import { createJobCard } from "./card.js";
import { remember } from "./recent.js";

const section = document.getElementById("job");
const slot = document.getElementById("job-slot");

async function retry(spec) {
  const created = await submitSpec(spec);
  remember(created.id, spec);
  window.location.assign("/jobs/" + encodeURIComponent(created.id));
}

const card = createJobCard({ id: section.dataset.jobId, onRetry: retry });
slot.appendChild(card.element);
card.start();
