// The dashboard's one script: times in the browser's zone, and live logs of a run.
"use strict";

function formatIn(date, zone, options) {
  try {
    return new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: zone }, options)).format(date);
  } catch (error) {
    return date.toISOString();
  }
}

function localTimes(root) {
  for (const element of root.querySelectorAll("time[datetime]")) {
    const date = new Date(element.getAttribute("datetime"));
    if (isNaN(date.getTime())) continue;
    const zone = element.dataset.zone || "UTC";
    if (element.hasAttribute("data-short")) {
      element.textContent = formatIn(date, undefined, { hour: "2-digit", minute: "2-digit" });
    } else {
      element.textContent = formatIn(date, undefined, { dateStyle: "medium", timeStyle: "medium" });
    }
    const parts = [];
    if (zone !== "UTC") parts.push(zone + ": " + formatIn(date, zone, { dateStyle: "medium", timeStyle: "long" }));
    parts.push("UTC: " + date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z"));
    element.title = parts.join("\n");
  }
}

function followRun() {
  const facts = document.getElementById("run-facts");
  const log = document.getElementById("log");
  const state = document.getElementById("log-state");
  if (!facts || !log || facts.dataset.finished === "true" || !window.EventSource) return;
  const source = new EventSource("/api/runs/" + facts.dataset.run + "/logs");
  let live = false;
  source.addEventListener("waiting", () => { state.textContent = "Waiting for a scheduler to start it…"; });
  source.addEventListener("withheld", () => {
    state.textContent = "Live output withheld: this job's secrets cannot be read here to mask it; its tail shows when it ends.";
  });
  source.addEventListener("output", (event) => {
    if (!live) { log.textContent = ""; live = true; state.textContent = "Live from the container."; }
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent += JSON.parse(event.data).text;
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("skipped", (event) => {
    // This tab fell behind what the server keeps of the run's output: a gap, marked.
    log.textContent += "\n[… " + JSON.parse(event.data).bytes + " bytes not shown …]\n";
  });
  source.addEventListener("end", (event) => {
    source.close();
    const run = JSON.parse(event.data);
    if (!run.streamed) log.textContent = run.output;
    state.textContent = "Ended " + run.status.replace("_", " ") + ".";
    const status = document.getElementById("run-status");
    if (status) {
      status.innerHTML = "";
      const span = document.createElement("span");
      span.className = "status s-" + run.status;
      span.textContent = run.status.replace("_", " ");
      status.appendChild(span);
    }
    document.getElementById("run-exit").textContent = run.exit_code === null ? "-" : String(run.exit_code);
    const error = document.getElementById("run-error");
    if (run.error) {
      error.innerHTML = "";
      const pre = document.createElement("pre");
      pre.className = "error";
      pre.textContent = run.error;
      error.appendChild(pre);
    }
    for (const form of document.querySelectorAll("form[action$='/cancel'], a.cancel")) form.remove();
    facts.dataset.finished = "true";
    // Shown again as the server records it: start, end, duration, lateness.
    window.setTimeout(() => window.location.reload(), 500);
  });
  source.addEventListener("error", () => {
    if (facts.dataset.finished !== "true") state.textContent = "Lost the connection; reload to follow again.";
    source.close();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  followRun();
});
