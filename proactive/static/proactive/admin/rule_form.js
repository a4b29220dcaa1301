"use strict";
// The trigger rule form: show only the fields of the chosen type and options, and "Preview" (a
// backtest of the form's unsaved values, rendered by the server into the backtest panel).
(function () {
  // `shown`: for each select that governs fields (type, comparison, aggregate), the fields each of
  // its options shows. A field is visible when every select that governs it shows it.
  function showChosenFields(shown) {
    const governing = Object.entries(shown).map(function ([select, options]) {
      const input = document.getElementById("id_" + select);
      const governed = new Set(Object.values(options).flat());
      const visible = new Set(input ? options[input.value] || [] : governed);
      return {governed: governed, visible: visible};
    });
    const fields = new Set(governing.flatMap(function (g) { return Array.from(g.governed); }));
    for (const name of fields) {
      const row = document.querySelector(".form-row.field-" + name);
      if (row) {
        const hidden = governing.some(function (g) { return g.governed.has(name) && !g.visible.has(name); });
        // A row with an error stays visible, whatever was chosen.
        row.style.display = hidden && !row.classList.contains("errors") ? "none" : "";
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
    const declared = document.getElementById("rule-fields-of-type");  // the server's lists, per type and option
    if (document.getElementById("id_type") && declared) {
      const shown = JSON.parse(declared.textContent);
      showChosenFields(shown);
      for (const select of Object.keys(shown)) {
        const input = document.getElementById("id_" + select);
        if (input) {
          input.addEventListener("change", function () { showChosenFields(shown); });
        }
      }
    }
    const button = document.getElementById("rule-preview-button");
    if (button) {
      button.addEventListener("click", function () { preview(button); });
    }
  });
})();
