// Annotation page: fetches the next item from the API, submits choices by candidate id.
(function () {
  "use strict";
  const root = document.getElementById("annotate");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  let current = null;
  let busy = false;
  let pollTimer = null;

  function setStatus(text) { $("status").textContent = text; $("status").hidden = !text; }

  const api = window.detoxApi;

  function render(payload) {
    $("saved-count").textContent = payload.saved_choices;
    current = payload.assignment;
    if (!current) {
      $("item").hidden = true;
      setStatus(payload.message + (payload.status === "generating" ? " ⏳" : ""));
      if (payload.status === "generating") { pollTimer = setTimeout(loadNext, 2000); }
      return;
    }
    setStatus("");
    $("item").hidden = false;
    $("error").textContent = "";
    $("prompt").textContent = current.prompt;
    $("prompt").classList.toggle("blurred", $("blur-toggle").checked);
    const list = $("candidates");
    list.innerHTML = "";
    current.candidates.forEach((c) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "candidate";
      button.dataset.id = c.id;
      button.innerHTML = "<kbd></kbd> <span></span>";
      button.querySelector("kbd").textContent = c.position;
      button.querySelector("span").textContent = c.text;
      button.addEventListener("click", () => submit({ candidate: c.id }));
      li.appendChild(button);
      list.appendChild(li);
    });
    $("n-keys").textContent = current.candidates.length;
    $("own-rewrite").value = "";
    $("none-box").open = false;
  }

  async function loadNext() {
    clearTimeout(pollTimer);
    try { render(await api(root.dataset.nextUrl)); }
    catch (e) { setStatus("Could not load the next item: " + e.message); pollTimer = setTimeout(loadNext, 5000); }
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

  $("own-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("own-rewrite").value.trim();
    if (!text) { $("error").textContent = "Write your own rewrite when none of the candidates is acceptable."; return; }
    submit({ own_rewrite: text });
  });
  $("skip-form").addEventListener("submit", (ev) => { ev.preventDefault(); submit({ skip_reason: $("skip-reason").value }); });
  $("blur-toggle").addEventListener("change", () => $("prompt").classList.toggle("blurred", $("blur-toggle").checked));
  $("prompt").addEventListener("click", () => $("prompt").classList.remove("blurred"));
  document.addEventListener("keydown", (ev) => {
    if (!current || ["TEXTAREA", "INPUT", "SELECT"].includes(document.activeElement.tagName)) return;
    const n = parseInt(ev.key, 10);
    if (n >= 1 && n <= current.candidates.length) { submit({ candidate: current.candidates[n - 1].id }); }
    else if (ev.key === "0") { $("none-box").open = true; $("own-rewrite").focus(); ev.preventDefault(); }
  });
  loadNext();
})();
