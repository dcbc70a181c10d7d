// Live progress on the job page: poll the job's progress.json every 2 s until it is done.
(function () {
  "use strict";
  var box = document.getElementById("job-progress");
  if (!box) { return; }
  var url = box.getAttribute("data-progress-url");
  function update(progress) {
    document.getElementById("job-bar").value = progress.finished;
    document.getElementById("job-percent").textContent = progress.percent;
    document.getElementById("job-finished").textContent = progress.finished;
    document.getElementById("job-status").textContent = progress.done ? "(done)" : "(running)";
    var paused = document.getElementById("job-paused");
    paused.hidden = !progress.paused_until;
    if (progress.paused_until) {
      document.getElementById("job-paused-until").textContent = progress.paused_until;
    }
    box.querySelectorAll(".job-count").forEach(function (cell) {
      cell.textContent = progress.counts[cell.getAttribute("data-state")];
    });
    offer("job-retry-failed", progress.retry_offered);
    offer("job-cancel-rest", progress.cancel_offered);
    offer("job-actions", progress.retry_offered || progress.cancel_offered);
  }
  // The buttons exist only for operators; a finished job offers neither.
  function offer(id, offered) {
    var element = document.getElementById(id);
    if (element) { element.hidden = !offered; }
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (progress) {
        update(progress);
        if (!progress.done) { window.setTimeout(poll, 2000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();
