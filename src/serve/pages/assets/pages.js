// The pages' one script, for what plain HTML cannot do: the drop zone of the upload form, and
// a running job's live progress from the API's event stream. Without it the forms still work
// and a running job's page reloads itself every few seconds.
"use strict";

(function dropZone() {
  const zone = document.getElementById("drop");
  const input = document.getElementById("file");
  const name = document.getElementById("file-name");
  if (!zone || !input) return;
  const show = () => {
    if (name) name.textContent = input.files && input.files.length ? input.files[0].name : "";
  };
  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach((type) =>
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    }),
  );
  ["dragleave", "drop"].forEach((type) =>
    zone.addEventListener(type, () => zone.classList.remove("over")),
  );
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) {
      input.files = files;
      show();
    }
  });
})();

(function liveProgress() {
  const section = document.getElementById("progress");
  if (!section || section.dataset.live !== "true" || !window.EventSource) return;
  // The script keeps the page up to date: the no-script reload is not needed.
  const fill = (format, values) =>
    format.replace(/\{(\w+)\}/g, (all, key) => (key in values ? String(values[key]) : all));
  const duration = (seconds) =>
    seconds < 120
      ? fill(section.dataset.secondsFormat, { n: Math.ceil(seconds) })
      : fill(section.dataset.minutesFormat, { n: Math.ceil(seconds / 60) });
  const state = document.getElementById("state");
  const bar = document.getElementById("bar");
  const rowsDone = document.getElementById("rows-done");
  const rate = document.getElementById("rate");
  const eta = document.getElementById("eta");
  let first = null;
  let rowsPerSecond = Number(section.dataset.rate) || 0;
  const source = new EventSource(section.dataset.events);
  source.addEventListener("job", (message) => {
    const job = JSON.parse(message.data);
    if (state && job.state !== state.dataset.state) {
      // Queued became running, or the run ended: the page shows each state its own way.
      source.close();
      window.location.reload();
      return;
    }
    const now = Date.now() / 1000;
    if (first === null) first = { at: now, done: job.rows_done };
    if (now - first.at >= 1 && job.rows_done > first.done) {
      rowsPerSecond = (job.rows_done - first.done) / (now - first.at);
    }
    bar.max = Math.max(job.rows, 1);
    bar.value = job.rows_done;
    rowsDone.textContent = fill(section.dataset.rowsFormat, { done: job.rows_done, total: job.rows });
    if (rate && rowsPerSecond > 0) {
      rate.textContent = fill(section.dataset.rateFormat, { r: rowsPerSecond.toFixed(1) });
      eta.textContent = duration(Math.max(job.rows - job.rows_done, 0) / rowsPerSecond);
    }
    for (const row of document.querySelectorAll("#counts tr[data-status]")) {
      const n = job.counts[row.dataset.status] || 0;
      row.lastElementChild.textContent = String(n);
      row.hidden = n === 0;
    }
  });
  source.addEventListener("end", () => {
    source.close();
    window.location.reload();
  });
})();

// On paper, a folded section (a finished job's check) is printed unfolded.
window.addEventListener("beforeprint", () => {
  for (const details of document.querySelectorAll("details")) details.open = true;
});
