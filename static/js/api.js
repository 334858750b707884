// Shared by the pages that talk to the REST API: a JSON fetch that sends the CSRF token and turns
// a 4xx/5xx answer into an Error carrying the server's message.
window.detoxApi = async function (url, options) {
  "use strict";
  const token = document.querySelector("[name=csrfmiddlewaretoken]");
  const response = await fetch(url, Object.assign({
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.value : "", "Accept": "application/json" },
  }, options || {}));
  let body = {};
  try { body = await response.json(); } catch (e) { /* empty body */ }
  if (!response.ok) {
    const detail = body.detail || Object.entries(body).map(([k, v]) => k + ": " + v).join("; ");
    const error = new Error(detail || ("HTTP " + response.status));
    error.status = response.status;
    throw error;
  }
  return body;
};
