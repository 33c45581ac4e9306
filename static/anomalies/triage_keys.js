/* Keyboard triage on the anomaly list (no libraries; docs: the list's "?" box).
 *
 *   j / k       focus the next / previous row (class "kb-focus")
 *   x           select or unselect the focused row (its action checkbox)
 *   Enter / o   open the focused row's anomaly page
 *   a r d s     acknowledge / resolve / dismiss… / snooze 7 days: the selected rows, else the
 *               focused one, through the list's own actions form (the same admin actions)
 *   c           open the focused row's anomaly page at its cycle-count form (#record-count)
 *   ?           show or hide the keys (#kb-help)
 *
 * Keys are ignored while typing in an input, select or textarea, and with Ctrl/Alt/Meta.
 */
(function () {
  "use strict";

  var ACTIONS = { a: "acknowledge", r: "resolve", d: "dismiss", s: "snooze_7_days" };
  var FOCUS = "kb-focus";

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#result_list tbody tr"));
  }

  function focused() {
    return document.querySelector("#result_list tbody tr." + FOCUS);
  }

  function focusRow(row) {
    var current = focused();
    if (current) {
      current.classList.remove(FOCUS);
      current.removeAttribute("aria-selected");
    }
    row.classList.add(FOCUS);
    row.setAttribute("aria-selected", "true");
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(focused());
    var next = index < 0 ? (step > 0 ? 0 : all.length - 1) : index + step;
    focusRow(all[Math.max(0, Math.min(all.length - 1, next))]);
  }

  function checkbox(row) {
    return row && row.querySelector("input.action-select");
  }

  function rowLink(row) {
    return row && row.querySelector("th a, td a");
  }

  function selected() {
    return Array.prototype.slice.call(
      document.querySelectorAll("#result_list tbody input.action-select:checked")
    );
  }

  function runAction(name) {
    var form = document.getElementById("changelist-form");
    var select = form && form.querySelector("select[name=action]");
    if (!select || !select.querySelector('option[value="' + name + '"]')) return;
    if (!selected().length) {
      var box = checkbox(focused());
      if (!box) return;
      box.click(); // as a mouse would: Django's actions.js keeps its counter right
    }
    select.value = name;
    var go = form.querySelector("button[name=index]");
    if (go && form.requestSubmit) form.requestSubmit(go);
    else if (go) go.click();
    else form.submit();
  }

  function toggleHelp() {
    var help = document.getElementById("kb-help");
    if (help) help.hidden = !help.hidden;
  }

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "select" || tag === "textarea" || target.isContentEditable;
  }

  function onKey(event) {
    if (event.ctrlKey || event.altKey || event.metaKey || typing(event.target)) return;
    var key = event.key;
    var row = focused();
    if (key === "j" || key === "k") {
      move(key === "j" ? 1 : -1);
    } else if (key === "x") {
      if (!checkbox(row)) return;
      checkbox(row).click();
    } else if (key === "Enter" || key === "o") {
      // Enter on a focused link or button does what it always does.
      if (key === "Enter" && event.target.closest && event.target.closest("a, button")) return;
      var link = rowLink(row);
      if (!link) return;
      window.location.href = link.href;
    } else if (key === "c") {
      var target = rowLink(row);
      if (!target) return;
      window.location.href = target.href.split("#")[0] + "#record-count";
    } else if (Object.prototype.hasOwnProperty.call(ACTIONS, key)) {
      if (!row && !selected().length) return;
      runAction(ACTIONS[key]);
    } else if (key === "?") {
      toggleHelp();
    } else if (key === "Escape") {
      var help = document.getElementById("kb-help");
      if (help && !help.hidden) help.hidden = true;
      else return;
    } else {
      return;
    }
    event.preventDefault();
  }

  function init() {
    if (!document.getElementById("result_list")) return; // not the list (e.g. a change page)
    document.addEventListener("keydown", onKey);
    // A click on a row (not on its link or checkbox) moves the keyboard focus there too.
    document.getElementById("result_list").addEventListener("click", function (event) {
      var row = event.target.closest && event.target.closest("tbody tr");
      if (row) focusRow(row);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
