// Training run page: polls the run's API row every 2 s, updates the progress bar, loss chart and log.
(function () {
  "use strict";
  const root = document.getElementById("run");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  let chart = null;

  function drawLoss(history) {
    if (!history.length || typeof uPlot === "undefined") return;
    const data = [history.map((p) => p[0]), history.map((p) => p[1])];
    if (!chart) {
      chart = new uPlot({ width: Math.min(900, root.clientWidth - 40), height: 260,
        series: [{ label: "step" }, { label: "loss", stroke: "#2f6fed", width: 2 }],
        axes: [{ label: "step" }, { label: "loss" }], scales: { x: { time: false } } }, data, $("chart"));
    } else { chart.setData(data); }
  }

  function fmtEta(s) {
    if (s === null || s === undefined) return "–";
    const m = Math.floor(s / 60); return m ? m + " min " + Math.round(s % 60) + " s" : Math.round(s) + " s";
  }

  async function poll() {
    let run;
    try {
      const r = await fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      run = await r.json();
    } catch (e) { setTimeout(poll, 5000); return; }
    $("status").textContent = run.status;
    $("step").textContent = run.step; $("total").textContent = run.total_steps;
    $("bar").style.width = Math.round(100 * run.progress) + "%";
    $("loss").textContent = run.loss === null ? "–" : run.loss.toFixed(4);
    $("eta").textContent = fmtEta(run.eta_seconds);
    $("device").textContent = run.device || "–";
    $("log").textContent = run.log_tail;
    $("error").textContent = run.error;
    if (run.result_version) $("result").textContent = "New version: " + run.result_version;
    drawLoss(run.loss_history);
    if (["succeeded", "failed", "cancelled"].includes(run.status)) {
      const form = $("cancel-form"); if (form) form.remove();
      return;
    }
    setTimeout(poll, 2000);
  }
  poll();
})();
