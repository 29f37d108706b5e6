"use strict";
document.getElementById("chart-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("form-error");
  error.hidden = true;
  const title = document.getElementById("title").value;
  try {
    const response = await fetch("/api/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(title ? { title } : {}),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || response.statusText);
    window.location.href = "/jobs/" + encodeURIComponent(body.id);
  } catch (failure) {
    error.textContent = "Could not queue the chart: " + failure.message;
    error.hidden = false;
  }
});
