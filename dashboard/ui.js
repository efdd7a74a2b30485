/* Pete dashboard, helpers every panel script shares (loaded first): a status line, and the
   message to show for a failed /api response (the server's own `error.message` when it sent one). */
(() => {
"use strict";

function setStatus(id, message, kind) {
  const el = document.getElementById(id);
  el.textContent = message;
  el.className = `status${kind ? " " + kind : ""}`;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error) return `${body.error.message} (${response.status})`;
  } catch (_) { /* not JSON */ }
  return `The server answered ${response.status}.`;
}

window.PeteUI = { setStatus, errorMessage };
})();
