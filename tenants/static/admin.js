// Progressive enhancement for the admin pages; every page works without it.
// Loaded as a file because the Content-Security-Policy forbids inline scripts.
"use strict";

(function () {
  // The copy-once dialog: modal, closed only by its "Done" link, which replaces this page in
  // the history so that Back never returns to the page that showed the key.
  function setUpKeyDialog(dialog) {
    if (typeof dialog.showModal === "function") {
      if (dialog.open) dialog.close();
      dialog.showModal();
    }
    dialog.addEventListener("cancel", function (event) { event.preventDefault(); });
    dialog.querySelectorAll("a[data-replace]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        window.location.replace(link.href);
      });
    });
  }

  function selectText(element) {
    if (typeof element.select === "function") {
      element.select();
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copyBySelection(element) {
    selectText(element);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  function setUpCopyButton(button) {
    var target = document.getElementById(button.dataset.copy);
    var status = button.parentElement.querySelector("[data-copy-status]");
    function report(text) { if (status) status.textContent = text; }
    function fallback() {
      report(copyBySelection(target) ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.");
    }
    button.addEventListener("click", function () {
      var text = target.textContent.trim();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () {
          selectText(target);
          report("Copied to the clipboard.");
        }, fallback);
      } else {
        fallback();
      }
    });
  }

  // Destructive forms ask first: <form data-confirm="Revoke …?">.
  function setUpConfirm(form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // A button that stays disabled until its form's text field holds an exact value (the slug).
  function setUpTypedConfirmation(button) {
    var input = button.form && button.form.querySelector("input[type=text]");
    if (!input) return;
    function update() { button.disabled = input.value !== button.dataset.enableWhenEquals; }
    input.addEventListener("input", update);
    update();
  }

  function each(selector, setUp) {
    document.querySelectorAll(selector).forEach(setUp);
  }

  document.addEventListener("DOMContentLoaded", function () {
    each("dialog[data-modal]", setUpKeyDialog);
    each("button[data-copy]", setUpCopyButton);
    each("form[data-confirm]", setUpConfirm);
    each("button[data-enable-when-equals]", setUpTypedConfirmation);
  });
})();
