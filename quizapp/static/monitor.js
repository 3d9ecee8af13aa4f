// The staff overview's live table: poll live.json and re-render the table body and the
// counts. Everything from the server is written with textContent (never innerHTML), so a
// student's name cannot inject markup. Without JavaScript the page still shows the
// table as it was when loaded.
(function () {
  "use strict";

  var body = document.getElementById("live-body");
  if (!body || !window.fetch) { return; }
  var url = body.dataset.url;
  var every = (Number(body.dataset.pollSeconds) || 15) * 1000;
  var status = document.getElementById("live-status");
  var problem = document.getElementById("live-problem");  // a polite live region
  var failing = false;

  // Say it once when refreshing stops working and once when it works again: a screen
  // reader should not read the time of every refresh.
  function failed(now) {
    if (failing === now) { return; }
    failing = now;
    if (problem) {
      problem.textContent = now ? "The table could not be refreshed; trying again."
        : "The table is being refreshed again.";
    }
  }
  // Each cell carries its column's header as data-label, read from the table's own header
  // row: at 640 px and below (a phone, or 200 % zoom) app.css shows each row as a card
  // with those labels, as in the rows the server drew.
  var LABELS = Array.prototype.map.call(
    body.parentNode.querySelectorAll("thead th"),
    function (th) { return th.textContent.trim(); });
  var COLUMNS = LABELS.length || 8;
  var interveneUrl = body.dataset.interveneUrl;
  var finaliseUrl = body.dataset.finaliseUrl;  // for attempt 2147483647: replaced per row
  var PLACEHOLDER = "/2147483647/";

  function cell(tag, text) {
    var el = document.createElement(tag);
    el.textContent = text;
    return el;
  }

  // A row action's link, described by its row's student (the th's id), as on the server.
  function link(href, text, row) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    a.setAttribute("aria-describedby", "live-" + row.attempt_id);
    return a;
  }

  function studentCell(row) {
    var th = document.createElement("th");
    th.scope = "row";
    th.id = "live-" + row.attempt_id;
    var a = document.createElement("a");
    a.href = row.student.url;
    a.textContent = row.student.username;
    th.appendChild(a);
    th.appendChild(document.createTextNode(" "));
    var name = cell("span", row.student.name);
    name.className = "muted";
    th.appendChild(name);
    return th;
  }

  function deviceCell(row) {
    var td = document.createElement("td");
    if (row.device_changed) {
      td.appendChild(cell("strong", "changed"));
      td.appendChild(document.createTextNode(
        " (" + row.addresses + " address(es), " + row.clients + " session(s))"));
    } else {
      td.textContent = "no";
    }
    return td;
  }

  // Extra time (the form names the student and shows their current deadline) and
  // finalise now (its page shows the deadline too): nothing changes before a second step.
  function actionsCell(row) {
    var td = document.createElement("td");
    td.className = "row-actions";
    var username = row.student.username;
    if (interveneUrl) {
      td.appendChild(link(interveneUrl + "?student=" + encodeURIComponent(username),
        "Extra time", row));
      td.appendChild(document.createTextNode(" "));
    }
    if (finaliseUrl && finaliseUrl.indexOf(PLACEHOLDER) !== -1) {
      td.appendChild(link(finaliseUrl.replace(PLACEHOLDER, "/" + row.attempt_id + "/"),
        "Finalise now", row));
    }
    return td;
  }

  function render(data) {
    var rows = document.createDocumentFragment();
    data.attempts.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.appendChild(studentCell(row));
      tr.appendChild(cell("td", row.started_local));
      tr.appendChild(cell("td", row.deadline_local || "\u2014"));
      tr.appendChild(cell("td", row.time_left));
      tr.appendChild(cell("td", row.last_save_local || "no save yet"));
      tr.appendChild(cell("td", row.answered + " of " + row.slots));
      tr.appendChild(deviceCell(row));
      tr.appendChild(actionsCell(row));
      Array.prototype.forEach.call(tr.children, function (el, i) {
        if (LABELS[i]) { el.setAttribute("data-label", LABELS[i]); }
      });
      rows.appendChild(tr);
    });
    if (!data.attempts.length) {
      var empty = document.createElement("tr");
      var td = cell("td", "No attempt in progress.");
      td.colSpan = COLUMNS;
      empty.appendChild(td);
      rows.appendChild(empty);
    }
    while (body.firstChild) { body.removeChild(body.firstChild); }
    body.appendChild(rows);
    Object.keys(data.counts).forEach(function (key) {
      var el = document.querySelector('[data-count="' + key + '"]');
      if (el) { el.textContent = String(data.counts[key]); }
    });
    if (status) { status.textContent = "As of " + data.updated_local; }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) { render(data); failed(false); })
      .catch(function () {
        if (status) { status.textContent = "Could not refresh; trying again shortly"; }
        failed(true);
      })
      .then(function () { window.setTimeout(poll, every); });
  }

  window.setTimeout(poll, every);
}());
