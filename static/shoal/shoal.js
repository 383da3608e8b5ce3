// Behaviour the templates ask for with data- attributes, so that pages need no inline script or
// style under the Content-Security-Policy (console/csp.py). Runs on each page and on each piece of
// content htmx swaps in.
(function () {
  "use strict";

  // <div data-percent="37"> is a progress bar 37% wide (setting a style property from a script is
  // allowed by the policy; a style="" attribute in the markup is not).
  function sizeBars(root) {
    root.querySelectorAll("[data-percent]").forEach(function (bar) {
      var percent = Math.max(0, Math.min(100, parseFloat(bar.dataset.percent) || 0));
      bar.style.width = percent + "%";
    });
  }

  // Copy buttons only appear where they work (with JavaScript); the values are plain text anyway.
  function showCopyButtons(root) {
    root.querySelectorAll("button.copy[hidden]").forEach(function (button) { button.hidden = false; });
  }

  function prepare(root) {
    if (!root || !root.querySelectorAll) return;
    sizeBars(root);
    showCopyButtons(root);
    showDependents(root.ownerDocument || root);
  }

  // <div data-shown-when="scope=manage">: shown only while the form's field `scope` has that
  // value (a field that only matters for one choice, such as an API key's role).
  function showDependents(doc) {
    var dependents = doc.querySelectorAll("[data-shown-when]");
    for (var i = 0; i < dependents.length; i++) {
      var rule = dependents[i].dataset.shownWhen.split("=");
      var form = dependents[i].closest("form");
      var field = form && form.elements[rule[0]];
      if (!field) continue;
      var value = field.value !== undefined ? field.value : "";
      if (field.length && field[0] && field[0].type === "radio") {
        var checked = form.querySelector("input[name='" + rule[0] + "']:checked");
        value = checked ? checked.value : "";
      }
      dependents[i].hidden = value !== rule[1];
    }
  }

  document.addEventListener("change", function (event) {
    if (event.target.form && event.target.form.querySelector("[data-shown-when]")) showDependents(document);
  });

  function copy(button) {
    var source = document.getElementById(button.dataset.copy);
    var text = source.textContent.trim();
    var label = button.dataset.label || (button.dataset.label = button.textContent);
    function show(message) {
      button.textContent = message;
      setTimeout(function () { button.textContent = label; }, 1600);
    }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      document.body.removeChild(area);
      if (copied) { show("Copied"); return; }
      // Last resort: select the value so that Ctrl+C / ⌘C copies it.
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      show("Press Ctrl+C");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { show("Copied"); }, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.copy[data-copy]");
    if (button) copy(button);
    // Narrow screens: the sidebar folds into a Menu button that opens its links.
    var menu = event.target.closest && event.target.closest("button.menu-toggle");
    if (menu) {
      var open = document.getElementById("sidebar").classList.toggle("open");
      menu.setAttribute("aria-expanded", open ? "true" : "false");
    }
  });

  // <form data-confirm="…"> or <button data-confirm="…">: ask before submitting.
  document.addEventListener("submit", function (event) {
    var asker = (event.submitter && event.submitter.closest("[data-confirm]")) ||
      event.target.closest("[data-confirm]");
    if (asker && !window.confirm(asker.dataset.confirm)) event.preventDefault();
  });

  // Polling (hx-trigger="every …") rests while the tab is hidden: a page left open in a background
  // tab asks nothing of the server. Shown again, it asks at once: each polling element also listens
  // for "shoal:shown" from the document, sent here when the tab comes back.
  function polls(elt) {
    var trigger = elt && elt.getAttribute && elt.getAttribute("hx-trigger");
    return !!trigger && /(^|,)\s*every\s/.test(trigger);
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var polled = !event.detail.requestConfig || !event.detail.requestConfig.triggeringEvent;
    if (document.hidden && polled && polls(event.detail.elt)) event.preventDefault();
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) document.dispatchEvent(new CustomEvent("shoal:shown"));
  });

  document.addEventListener("htmx:load", function (event) { prepare(event.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { prepare(document); });
  } else {
    prepare(document);
  }
})();
