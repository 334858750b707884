// Arena page: fetches the next blind A/B match from the API and submits A, B, tie or a skip.
(function () {
  "use strict";
  const root = document.getElementById("arena");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const sides = { A: $("side-a"), B: $("side-b") };
  let current = null;
  let busy = false;
  let pollTimer = null;

  function setStatus(text) { $("status").textContent = text; $("status").hidden = !text; }

  const api = window.detoxApi;

  function render(payload) {
    $("judged-count").textContent = payload.judged;
    current = payload.assignment;
    if (!current) {
      $("match").hidden = true;
      setStatus(payload.message + (payload.status === "generating" ? " ⏳" : ""));
      if (payload.status === "generating") { pollTimer = setTimeout(loadNext, 2000); }
      return;
    }
    setStatus("");
    $("match").hidden = false;
    $("error").textContent = "";
    $("prompt").textContent = current.prompt;
    $("prompt").classList.toggle("blurred", $("blur-toggle").checked);
    current.candidates.forEach((c) => {
      sides[c.position].querySelector("span").textContent = c.text || "(empty output)";
      sides[c.position].dataset.id = c.id;
    });
  }

  async function loadNext() {
    clearTimeout(pollTimer);
    const url = root.dataset.nextUrl + (root.dataset.comparison ? "?comparison=" + root.dataset.comparison : "");
    try { render(await api(url)); }
    catch (e) { setStatus("Could not load the next match: " + e.message); pollTimer = setTimeout(loadNext, 5000); }
  }

  async function submit(fields) {
    if (!current || busy) return;
    busy = true;
    const body = Object.assign({ assignment: current.id }, fields);  // the server times the answer
    try {
      await api(root.dataset.submitUrl, { method: "POST", body: JSON.stringify(body) });
      await loadNext();
    } catch (e) {
      // 409: the item expired and went to someone else (or the comparison closed): show the next one.
      if (e.status === 409) { await loadNext(); }
      $("error").textContent = e.message;
    } finally { busy = false; }
  }

  function choose(side) { submit({ candidate: parseInt(sides[side].dataset.id, 10) }); }

  sides.A.addEventListener("click", () => choose("A"));
  sides.B.addEventListener("click", () => choose("B"));
  $("tie").addEventListener("click", () => submit({ tie: true }));
  $("skip-form").addEventListener("submit", (ev) => { ev.preventDefault(); submit({ skip_reason: $("skip-reason").value }); });
  $("blur-toggle").addEventListener("change", () => $("prompt").classList.toggle("blurred", $("blur-toggle").checked));
  $("prompt").addEventListener("click", () => $("prompt").classList.remove("blurred"));
  document.addEventListener("keydown", (ev) => {
    if (!current || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (["TEXTAREA", "INPUT", "SELECT"].includes(document.activeElement.tagName)) return;
    const key = ev.key.toLowerCase();
    if (key === "a" || key === "1") { choose("A"); }
    else if (key === "b" || key === "2") { choose("B"); }
    else if (key === "t" || key === "0") { submit({ tie: true }); }
  });
  loadNext();
})();
