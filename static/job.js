"use strict";
(function () {
  const section = document.getElementById("job");
  const bar = section.querySelector(".bar");
  const fill = section.querySelector(".fill");
  const stage = document.getElementById("stage");
  const error = document.getElementById("error");
  const image = document.getElementById("chart");
  let delay = 250;

  function show(progress, text) {
    const percent = Math.round(progress * 100);
    fill.style.width = percent + "%";
    bar.setAttribute("aria-valuenow", String(percent));
    stage.textContent = text;
  }

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
  }

  async function poll() {
    let response;
    try {
      response = await fetch(section.dataset.statusUrl, { headers: { Accept: "application/json" } });
    } catch (failure) {
      stage.textContent = "the service is unreachable; retrying…";
      return later();
    }
    if (response.status === 404) return fail("This job is unknown or has expired.");
    if (!response.ok) {
      stage.textContent = "the service is unavailable; retrying…";
      return later();
    }
    const job = await response.json();
    if (job.state === "finished") {
      show(1, "done");
      image.src = section.dataset.resultUrl;
      image.hidden = false;
      return;
    }
    if (job.state === "failed" || job.state === "stopped") return fail("The render failed: " + (job.error || "no reason given"));
    if (job.state === "canceled") return fail("The job was canceled.");
    const ahead = job.state === "queued" && job.position ? " — " + job.position + " ahead of you" : "";
    show(job.progress, (job.stage || job.state) + ahead);
    later();
  }

  function later() {
    setTimeout(poll, delay);
    delay = Math.min(delay * 1.5, 3000);
  }

  poll();
})();
