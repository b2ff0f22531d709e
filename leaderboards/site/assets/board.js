// seldbench board: sorting, filters and the compare view. No libraries, no network.
"use strict";
(function () {
  function value(row, index, numeric) {
    var cell = row.cells[index];
    if (!numeric) { return cell.textContent.trim().toLowerCase(); }
    var v = cell.getAttribute("data-v");
    return v === null || v === "" ? NaN : parseFloat(v);
  }

  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "num";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, index, numeric), y = value(b, index, numeric);
      if (numeric) {
        if (isNaN(x) !== isNaN(y)) { return isNaN(x) ? 1 : -1; }  // undefined last
        return isNaN(x) ? 0 : dir * (x - y);
      }
      return dir * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  }

  function applyFilters() {
    var want = {};
    document.querySelectorAll("[data-filter]").forEach(function (el) {
      want[el.getAttribute("data-filter")] = el.value.trim().toLowerCase();
    });
    document.querySelectorAll("table.board tbody tr").forEach(function (row) {
      var show = ["model", "recipe", "device"].every(function (k) {
        return !want[k] || (row.getAttribute("data-" + k) || "").toLowerCase() === want[k];
      }) && (!want.text || row.textContent.toLowerCase().indexOf(want.text) >= 0);
      row.classList.toggle("hidden", !show);
    });
  }

  function option(select, entry) {
    var o = document.createElement("option");
    o.value = entry.id;
    o.textContent = (entry.canonical ? "\u2605 " : "") + entry.label;
    select.appendChild(o);
  }

  function cell(row, text, cls) {
    var td = document.createElement(row.parentNode && row.parentNode.tagName === "THEAD" ? "th" : "td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
    return td;
  }

  function renderCompare(data) {
    var a = document.getElementById("cmp-a"), b = document.getElementById("cmp-b");
    var byId = {};
    data.entries.forEach(function (en) { byId[en.id] = en; });
    var A = byId[a.value], B = byId[b.value], out = document.getElementById("cmp-out");
    out.textContent = "";
    if (!A || !B) { return; }
    var figs = data.figures.filter(function (f) { return f in A.classwise || f in B.classwise; });
    var table = document.createElement("table");
    table.className = "plain compare";
    var head = table.createTHead().insertRow();
    cell(head, "class");
    (figs.length ? figs : data.figures).forEach(function (f) {
      cell(head, f + " A"); cell(head, f + " B"); cell(head, f + " B\u2212A");
    });
    var body = table.createTBody();
    function line(name, get) {
      var row = body.insertRow();
      cell(row, name);
      (figs.length ? figs : data.figures).forEach(function (f) {
        var x = get(A, f), y = get(B, f);
        cell(row, x ? x[1] : "n/a");
        cell(row, y ? y[1] : "n/a");
        var d = x && y && x[0] !== null && y[0] !== null ? y[0] - x[0] : null;
        var pct = f === "F" || f === "LR";
        var text = d === null ? "n/a" : (d > 0 ? "+" : "") + (pct ? (100 * d).toFixed(1) + "%" :
          (f === "LE" || f === "DOAE") ? d.toFixed(1) + "\u00b0" : d.toFixed(3));
        var cls = "";
        if (d !== null && Math.abs(d) > 1e-9) {
          cls = (d > 0) === !!data.better[f] ? "better" : "worse";
        }
        cell(row, text, cls);
      });
    }
    line("overall", function (en, f) { return en.overall[f]; });
    data.classes.forEach(function (c) {
      line(c, function (en, f) { return (en.classwise[f] || {})[c]; });
    });
    out.appendChild(table);
    if (window.history && window.history.replaceState) {
      try { window.history.replaceState(null, "", "?a=" + A.id + "&b=" + B.id); } catch (err) { /* file:// */ }
    }
  }

  function setupCompare() {
    var blob = document.getElementById("compare-data");
    if (!blob) { return; }
    var data = JSON.parse(blob.textContent);
    var a = document.getElementById("cmp-a"), b = document.getElementById("cmp-b");
    data.entries.forEach(function (en) { option(a, en); option(b, en); });
    var params = new URLSearchParams(window.location.search);
    var ids = data.entries.map(function (en) { return en.id; });
    a.value = ids.indexOf(params.get("a")) >= 0 ? params.get("a") : ids[0];
    var other = ids.filter(function (id) { return id !== a.value; });
    b.value = ids.indexOf(params.get("b")) >= 0 ? params.get("b") : (other[0] || ids[0]);
    a.addEventListener("change", function () { renderCompare(data); });
    b.addEventListener("change", function () { renderCompare(data); });
    renderCompare(data);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("th button.sort").forEach(function (btn) {
      btn.addEventListener("click", function () { sortBy(btn.closest("th")); });
    });
    document.querySelectorAll("[data-filter]").forEach(function (el) {
      el.addEventListener("input", applyFilters);
      el.addEventListener("change", applyFilters);
    });
    setupCompare();
  });
})();
