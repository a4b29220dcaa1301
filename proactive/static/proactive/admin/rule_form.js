"use strict";
// The trigger rule form: show only the fields of the chosen type, and "Preview" (a backtest of the
// form's unsaved values, rendered by the server into the backtest panel).
(function () {
  const FIELDS_BY_TYPE = {
    schedule: ["schedule", "schedule_explained"],
    metric_threshold: ["metric", "threshold", "window_days", "auto_resolve"],
    anomaly: ["metric", "threshold", "window_days", "auto_resolve"],
  };
  const TYPE_FIELDS = [...new Set(Object.values(FIELDS_BY_TYPE).flat())];

  function showFieldsOf(type) {
    const shown = FIELDS_BY_TYPE[type];
    for (const name of TYPE_FIELDS) {
      const row = document.querySelector(".form-row.field-" + name);
      if (row) {
        row.style.display = shown && !shown.includes(name) ? "none" : "";
      }
    }
  }

  async function preview(button) {
    const form = document.getElementById("triggerrule_form");
    const target = document.getElementById("rule-backtest");
    const body = new FormData(form);
    button.disabled = true;
    target.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(button.dataset.url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: {"X-CSRFToken": body.get("csrfmiddlewaretoken")},
      });
      if (response.ok) {
        target.innerHTML = await response.text();
      } else {
        target.innerHTML = "";
        const note = document.createElement("p");
        note.className = "errornote";
        note.textContent = "The preview failed (HTTP " + response.status + "). Nothing was saved.";
        target.appendChild(note);
      }
    } catch (error) {
      target.textContent = "The preview failed: " + error;
    } finally {
      button.disabled = false;
      target.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const type = document.getElementById("id_type");
    if (type) {
      showFieldsOf(type.value);
      type.addEventListener("change", function () { showFieldsOf(type.value); });
    }
    const button = document.getElementById("rule-preview-button");
    if (button) {
      button.addEventListener("click", function () { preview(button); });
    }
  });
})();
