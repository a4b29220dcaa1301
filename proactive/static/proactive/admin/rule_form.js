"use strict";
// The trigger rule form: show only the fields of the chosen type, and "Preview" (a backtest of the
// form's unsaved values, rendered by the server into the backtest panel).
(function () {
  function showFieldsOf(type, fieldsOfType) {
    const shown = fieldsOfType[type];
    for (const name of new Set(Object.values(fieldsOfType).flat())) {
      const row = document.querySelector(".form-row.field-" + name);
      if (row) {
        // A row with an error stays visible, whatever the type.
        const hide = shown && !shown.includes(name) && !row.classList.contains("errors");
        row.style.display = hide ? "none" : "";
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
    const declared = document.getElementById("rule-fields-of-type");  // the server's list, per type
    if (type && declared) {
      const fieldsOfType = JSON.parse(declared.textContent);
      showFieldsOf(type.value, fieldsOfType);
      type.addEventListener("change", function () { showFieldsOf(type.value, fieldsOfType); });
    }
    const button = document.getElementById("rule-preview-button");
    if (button) {
      button.addEventListener("click", function () { preview(button); });
    }
  });
})();
