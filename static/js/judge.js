// One page controller for judging candidates: best-of-N annotation and the blind A/B arena (its
// two-candidate case). It fetches the next assignment from the API, shows the candidates in the
// order the server recorded, and submits a choice by candidate id — or a tie, an own rewrite, a skip.
// The page configures it with data attributes on the [data-judge] element: next-url, submit-url,
// count-field (which payload count to show), comparison (arena only), wait (seconds the server may
// hold a next-item or next-match request until one is ready). Optional controls (#tie,
// #none-box with #own-form) exist only on the pages that offer them.
(function () {
  "use strict";
  const root = document.querySelector("[data-judge]");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const api = window.detoxApi;
  const cfg = root.dataset;
  let current = null;
  let busy = false;
  let pollTimer = null;
  let empties = 0;  // empty answers in a row that came back without a server-side wait
  let errors = 0;  // failed requests in a row

  function setStatus(text) { $("status").textContent = text; $("status").hidden = !text; }

  function candidateButton(candidate) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = $("candidates").tagName === "OL" ? "candidate" : "side";
    button.dataset.id = candidate.id;
    button.innerHTML = "<kbd></kbd> <span></span>";
    button.querySelector("kbd").textContent = candidate.position;
    button.querySelector("span").textContent = candidate.text || "(empty output)";
    button.addEventListener("click", () => submit({ candidate: candidate.id }));
    if (button.className === "side") return button;
    const li = document.createElement("li");
    li.appendChild(button);
    return li;
  }

  function render(payload) {
    $("done-count").textContent = payload[cfg.countField];
    current = payload.assignment;
    if (!current) {
      $("item").hidden = true;
      setStatus(payload.message + (payload.status === "generating" ? " ⏳" : ""));
      return;
    }
    setStatus("");
    $("item").hidden = false;
    $("error").textContent = "";
    $("prompt").textContent = current.prompt;
    $("prompt").classList.toggle("blurred", $("blur-toggle").checked);
    $("candidates").replaceChildren(...current.candidates.map(candidateButton));
    if ($("n-keys")) $("n-keys").textContent = current.candidates.length;
    if ($("none-box")) { $("own-rewrite").value = ""; $("none-box").open = false; }
  }

  // Delay before asking again after `misses` empty answers or errors in a row: 1, 2, 4, 8, 15 s.
  function backoff(misses) { return Math.min(1000 * 2 ** Math.max(misses - 1, 0), 15000); }

  // With data-wait the server holds the request until an item is ready (long poll, up to that many
  // seconds): an empty answer after a full wait is asked again at once; one that came back early
  // (the server had no waiting slot free) backs off.
  async function loadNext() {
    clearTimeout(pollTimer);
    const params = new URLSearchParams();
    if (cfg.comparison) params.set("comparison", cfg.comparison);
    if (cfg.wait) params.set("wait", cfg.wait);
    const url = cfg.nextUrl + (params.toString() ? "?" + params : "");
    const started = Date.now();
    try {
      const payload = await api(url);
      render(payload);
      errors = 0;
      if (payload.status !== "generating") { empties = 0; return; }
      const waitedFully = cfg.wait && Date.now() - started >= 800 * Number(cfg.wait);
      empties = waitedFully ? 0 : empties + 1;
      pollTimer = setTimeout(loadNext, waitedFully ? 0 : backoff(empties));
    } catch (e) {
      errors += 1;
      setStatus("Could not load the next item: " + e.message + " (trying again)");
      pollTimer = setTimeout(loadNext, backoff(errors + 2));
    }
  }

  async function submit(fields) {
    if (!current || busy) return;
    busy = true;
    try {
      // The server times the answer from when it assigned the item.
      await api(cfg.submitUrl, { method: "POST", body: JSON.stringify(Object.assign({ assignment: current.id }, fields)) });
      await loadNext();
    } catch (e) {
      $("error").textContent = e.message;
      // 409: the item expired and went to someone else (or the comparison closed): show the next one.
      if (e.status === 409) { await loadNext(); }
    } finally { busy = false; }
  }

  function candidateForKey(key) {
    const n = parseInt(key, 10);
    if (n >= 1 && n <= current.candidates.length) return current.candidates[n - 1];
    return current.candidates.find((c) => String(c.position).toLowerCase() === key);
  }

  if ($("own-form")) {
    $("own-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = $("own-rewrite").value.trim();
      if (!text) { $("error").textContent = "Write your own rewrite when none of the candidates is acceptable."; return; }
      submit({ own_rewrite: text });
    });
  }
  if ($("tie")) $("tie").addEventListener("click", () => submit({ tie: true }));
  $("skip-form").addEventListener("submit", (ev) => { ev.preventDefault(); submit({ skip_reason: $("skip-reason").value }); });
  $("blur-toggle").addEventListener("change", () => $("prompt").classList.toggle("blurred", $("blur-toggle").checked));
  $("prompt").addEventListener("click", () => $("prompt").classList.remove("blurred"));
  document.addEventListener("keydown", (ev) => {
    if (!current || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (["TEXTAREA", "INPUT", "SELECT"].includes(document.activeElement.tagName)) return;
    const key = ev.key.toLowerCase();
    const candidate = candidateForKey(key);
    if (candidate) { submit({ candidate: candidate.id }); }
    else if ($("tie") && (key === "t" || key === "0")) { submit({ tie: true }); }
    else if ($("none-box") && key === "0") { $("none-box").open = true; $("own-rewrite").focus(); ev.preventDefault(); }
  });
  loadNext();
})();
