/* SQL Console editor: a textarea that behaves like a small code editor.
 *
 * Tab indents by two spaces (Shift-Tab outdents; Esc then Tab leaves the editor), Enter keeps the
 * line's indentation, Ctrl/Cmd-Enter runs, the box grows with its text, pool and column names
 * insert on click, history entries load on click, and an error's position is selected.
 * Edits go through execCommand("insertText") where the browser has it, so that undo still works.
 */
(function () {
  "use strict";

  var INDENT = "  ";
  var tabLeaves = false;

  function editor() {
    return document.getElementById("sql-input");
  }

  function grow(el) {
    var max = Math.max(Math.round(window.innerHeight * 0.6), 240);
    el.style.height = "auto";
    var wanted = el.scrollHeight + 2;
    el.style.height = Math.min(wanted, max) + "px";
    el.style.overflowY = wanted > max ? "auto" : "hidden";
  }

  function replaceSelection(el, text) {
    el.focus();
    var done = false;
    try {
      done = document.execCommand("insertText", false, text);
    } catch (e) {
      done = false;
    }
    if (!done) {
      el.setRangeText(text, el.selectionStart, el.selectionEnd, "end");
    }
    grow(el);
  }

  function lineStart(value, pos) {
    return value.lastIndexOf("\n", pos - 1) + 1;
  }

  function indentLines(el, outdent) {
    var value = el.value;
    var start = el.selectionStart;
    var end = el.selectionEnd;
    if (!outdent && start === end) {
      replaceSelection(el, INDENT);
      return;
    }
    var from = lineStart(value, start);
    // A selection ending at the start of a line does not take that line.
    var last = end > start && value.charAt(end - 1) === "\n" ? end - 1 : end;
    var to = value.indexOf("\n", last);
    if (to < 0) to = value.length;
    var lines = value.slice(from, to).split("\n");
    var changed = lines
      .map(function (line) {
        return outdent ? line.replace(/^ {1,2}/, "") : INDENT + line;
      })
      .join("\n");
    el.setSelectionRange(from, to);
    replaceSelection(el, changed);
    if (start === end) {
      var moved = Math.max(from, start + (changed.length - (to - from)));
      el.setSelectionRange(moved, moved);
    } else {
      el.setSelectionRange(from, from + changed.length);
    }
  }

  function newline(el) {
    var value = el.value;
    var from = lineStart(value, el.selectionStart);
    var indent = /^[ \t]*/.exec(value.slice(from, el.selectionStart))[0];
    replaceSelection(el, "\n" + indent);
  }

  function quoteName(name) {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : "`" + name.replace(/`/g, "\\`") + "`";
  }

  function load(el, sql) {
    el.focus();
    el.select();
    replaceSelection(el, sql);
    el.setSelectionRange(sql.length, sql.length);
    el.scrollTop = el.scrollHeight;
  }

  function markError() {
    var el = editor();
    var result = document.getElementById("sql-result");
    var marked = result ? result.querySelector("[data-position]:not([data-marked])") : null;
    if (!el || !marked) return;
    marked.setAttribute("data-marked", "");
    var pos = Math.min(parseInt(marked.getAttribute("data-position"), 10) || 0, el.value.length);
    el.focus();
    el.setSelectionRange(pos, Math.min(pos + 1, el.value.length));
  }

  document.addEventListener("keydown", function (ev) {
    var el = editor();
    if (!el || ev.target !== el) return;
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      el.form.requestSubmit();
      return;
    }
    if (ev.key === "Escape") {
      tabLeaves = true;
      return;
    }
    if (ev.key === "Tab" && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      if (tabLeaves) {
        tabLeaves = false;
        return; // let the browser move the focus
      }
      ev.preventDefault();
      indentLines(el, ev.shiftKey);
      return;
    }
    tabLeaves = false;
    if (ev.key === "Enter" && !ev.shiftKey && !ev.altKey && !ev.isComposing) {
      ev.preventDefault();
      newline(el);
    }
  });

  document.addEventListener("input", function (ev) {
    if (ev.target === editor()) grow(ev.target);
  });

  document.addEventListener("click", function (ev) {
    var el = editor();
    if (!el || !ev.target.closest) return;
    var name = ev.target.closest("[data-insert]");
    if (name) {
      ev.preventDefault(); // inside a <summary>: insert, do not fold
      replaceSelection(el, quoteName(name.getAttribute("data-insert")));
      return;
    }
    var past = ev.target.closest(".sql-history a[data-sql]");
    if (past && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey) {
      ev.preventDefault();
      load(el, past.getAttribute("data-sql"));
      var current = document.querySelectorAll(".sql-history a.current");
      for (var i = 0; i < current.length; i++) current[i].classList.remove("current");
      past.classList.add("current");
    }
  });

  // As soon as the result is in the page (afterSwap), and again once settled in case a swap was
  // deferred: markError marks a result once.
  document.addEventListener("htmx:afterSwap", markError);
  document.addEventListener("htmx:afterSettle", markError);

  function init() {
    var el = editor();
    if (!el) return;
    if (/Mac|iPhone|iPad/.test(navigator.platform || "")) {
      var hint = document.getElementById("sql-shortcut");
      if (hint) hint.innerHTML = "<kbd>⌘</kbd> + <kbd>Enter</kbd>";
    }
    grow(el);
    el.setSelectionRange(el.value.length, el.value.length);
    markError();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
