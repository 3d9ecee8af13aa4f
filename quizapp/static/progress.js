// Progress for long operations: the regrade dry run and commit, the roster preview and
// import (forms marked data-progress), and the CSV downloads (links marked
// data-progress-download). Without JavaScript, or in a browser without streamed fetch,
// the forms post and the links download exactly as before.
//
// A form is posted with fetch() and `Accept: application/x-ndjson` (its CSRF token is
// in the form data, as for a plain post); the server streams one JSON object a line
// while the work runs (quizapp/web/progress.py): {"progress", "total"}, {"stage"}, then
// {"done", "redirect"} or {"done", "html"} or {"error"[, "html"]}. A download is fetched
// as a stream; its rows are counted against the server's X-Total-Rows header, and the
// file is saved under the server's name from a Blob.
//
// The bar moves with every line; the text beside it is a polite live region, updated at
// most every 10 % and 1 s so that a screen reader is not flooded. Server text is written
// with textContent; a result page is the server's own rendered template (escaped there).
(function () {
  "use strict";

  var NDJSON = "application/x-ndjson";

  // ---- Pure helpers (module.exports below lets node test them) ----

  // Text chunks in, complete lines out (a line may arrive in several chunks).
  function LineSplitter() {
    this.rest = "";
  }
  LineSplitter.prototype.push = function (text) {
    var parts = (this.rest + text).split("\n");
    this.rest = parts.pop();
    return parts.filter(function (line) { return line.trim() !== ""; });
  };
  LineSplitter.prototype.end = function () {
    var last = this.rest.trim();
    this.rest = "";
    return last ? [last] : [];
  };

  // Counts CSV records as text streams in (RFC 4180: a line break inside quotes, as in
  // an essay answer, does not end a record; "" inside quotes toggles twice).
  function CsvRowCounter() {
    this.rows = 0;
    this.quoted = false;
    this.open = false; // characters seen since the last record ended
  }
  CsvRowCounter.prototype.push = function (text) {
    for (var i = 0; i < text.length; i += 1) {
      var c = text.charAt(i);
      if (c === "\"") {
        this.quoted = !this.quoted;
        this.open = true;
      } else if (c === "\n" && !this.quoted) {
        this.rows += 1;
        this.open = false;
      } else if (c !== "\r" && c !== "\ufeff") {
        this.open = true;
      }
    }
    return this.rows;
  };
  CsvRowCounter.prototype.end = function () {
    if (this.open) {
      this.rows += 1;
      this.open = false;
    }
    return this.rows;
  };

  // The file name from a Content-Disposition header (filename*=UTF-8'' first).
  function filenameFrom(disposition, fallback) {
    var header = disposition || "";
    var extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
    if (extended) {
      try { return decodeURIComponent(extended[1].trim()); } catch (e) { /* plain below */ }
    }
    var plain = /filename\s*=\s*"([^"]*)"/i.exec(header) || /filename\s*=\s*([^;]+)/i.exec(header);
    var name = plain ? plain[1].trim() : "";
    return name.replace(/[\\/]/g, "_") || fallback;
  }

  // When to update the live text: the first report, the last, and otherwise only after
  // at least 10 percentage points and 1 second since the last update.
  function Announcer(clock) {
    this.clock = clock || function () { return Date.now(); };
    this.percent = null;
    this.at = 0;
  }
  Announcer.prototype.due = function (done, total) {
    var now = this.clock();
    var percent = total > 0 ? Math.min(100, Math.floor(done * 100 / total)) : 0;
    var last = this.percent;
    if (last !== null && done < total) {
      if (percent - last < 10 || now - this.at < 1000) { return false; }
    }
    if (last === 100 && done >= total) { return false; }
    this.percent = percent;
    this.at = now;
    return true;
  };

  function count(n) {
    return Number(n).toLocaleString("en-GB");
  }

  if (typeof module !== "undefined" && module.exports) {
    module.exports = {
      LineSplitter: LineSplitter,
      CsvRowCounter: CsvRowCounter,
      filenameFrom: filenameFrom,
      Announcer: Announcer
    };
    return;
  }

  // ---- The page ----

  var canStream = !!(window.fetch && window.TextDecoder && window.DOMParser &&
    window.ReadableStream && window.Response && "body" in window.Response.prototype);
  if (!canStream) { return; }

  // A bar and a polite live text, created when the page loads (a live region that is
  // already in the page is announced reliably; one added later often is not).
  function Panel(container, before) {
    this.element = document.createElement("div");
    this.element.className = "progress-panel";
    this.bar = document.createElement("progress");
    this.bar.hidden = true;
    this.text = document.createElement("p");
    this.text.className = "progress-status";
    this.text.setAttribute("aria-live", "polite");
    this.element.appendChild(this.bar);
    this.element.appendChild(this.text);
    container.insertBefore(this.element, before || null);
  }
  Panel.prototype.start = function (label, unit) {
    this.label = label;
    this.unit = unit || "";
    this.announcer = new Announcer();
    this.element.classList.remove("progress-error");
    this.text.removeAttribute("role");
    this.bar.hidden = false;
    this.bar.removeAttribute("value"); // indeterminate until the first count
    this.say(label + "\u2026");
  };
  Panel.prototype.update = function (done, total) {
    if (total > 0) {
      this.bar.max = total;
      this.bar.value = Math.min(done, total);
    }
    if (this.announcer.due(done, total)) {
      var of = total > 0 ? " of " + count(total) : "";
      var percent = total > 0 ? " (" + Math.min(100, Math.floor(done * 100 / total)) + " %)" : "";
      this.say(this.label + ": " + count(done) + of + (this.unit ? " " + this.unit : "") + percent);
    }
  };
  Panel.prototype.stage = function (text) {
    this.bar.removeAttribute("value");
    this.say(text + "\u2026");
  };
  Panel.prototype.finish = function (text) {
    if (this.bar.max) { this.bar.value = this.bar.max; }
    this.say(text);
  };
  Panel.prototype.fail = function (text) {
    this.bar.hidden = true;
    this.element.classList.add("progress-error");
    this.text.setAttribute("role", "alert");
    this.say(text);
  };
  Panel.prototype.say = function (text) {
    this.text.textContent = text;
  };

  // Reads an NDJSON response line by line; resolves with the final line (or null if the
  // stream ended without one).
  function readLines(response, onStep) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var splitter = new LineSplitter();
    var final = null;

    function handle(lines) {
      lines.forEach(function (line) {
        var data = JSON.parse(line);
        if ("progress" in data || "stage" in data) {
          onStep(data);
        } else {
          final = data;
        }
      });
    }

    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          handle(splitter.push(decoder.decode()));
          handle(splitter.end());
          return final;
        }
        handle(splitter.push(decoder.decode(chunk.value, { stream: true })));
        return pump();
      });
    }
    return pump();
  }

  // Shows a result page sent by the server (a dry run, a preview): its main content
  // replaces this page's, focus moves to its heading, and its forms get progress too.
  function showPage(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var incoming = doc.getElementById("main");
    var main = document.getElementById("main");
    if (!incoming || !main) { return false; }
    while (main.firstChild) { main.removeChild(main.firstChild); }
    Array.prototype.forEach.call(incoming.childNodes, function (node) {
      main.appendChild(document.importNode(node, true));
    });
    document.title = doc.title;
    window.scrollTo(0, 0);
    bind(main);
    var heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
    return true;
  }

  // An error whose message is meant for the page (others become a general one).
  function shown(message) {
    var error = new Error(message);
    error.shown = true;
    return error;
  }

  var LOST = "The connection was lost before the result arrived. Reload the page to " +
    "see whether the change was applied.";

  function submitWithProgress(form, panel, event) {
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") { return; }
    var data = new FormData(form);
    var submitter = event.submitter;
    if (submitter && submitter.name) { data.append(submitter.name, submitter.value); }
    var buttons = form.querySelectorAll("button, input[type=submit]");
    function busy(on) {
      form.setAttribute("aria-busy", on ? "true" : "false");
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = on; });
    }
    busy(true);
    panel.start(form.getAttribute("data-progress") || "Working", form.getAttribute("data-progress-unit"));
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: NDJSON }
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf(NDJSON) !== 0) {
        throw shown("The server answered " + response.status +
          " without progress. Reload the page and try again.");
      }
      return readLines(response, function (step) {
        if ("stage" in step) { panel.stage(step.stage); } else { panel.update(step.progress, step.total); }
      });
    }).then(function (final) {
      if (!final) { throw shown(LOST); }
      if (final.redirect) {
        panel.finish("Done. Opening the result\u2026");
        window.location.assign(final.redirect);
        return;
      }
      if (final.html && showPage(final.html)) { return; } // the page says the rest
      busy(false);
      if (final.error) { panel.fail(final.error); } else { panel.finish("Done."); }
    }).catch(function (error) {
      busy(false);
      panel.fail(error && error.shown ? error.message : LOST);
    });
  }

  function download(link, panel, event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
        event.shiftKey || event.altKey || panel.busy) {
      return; // a new tab, a saved link, or one download at a time: the browser's way
    }
    event.preventDefault();
    panel.busy = true;
    var name = (link.getAttribute("data-progress-download") || link.textContent).trim();
    panel.start("Preparing " + name, "rows");
    fetch(link.href, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        throw shown("The download failed (the server answered " + response.status + ").");
      }
      var total = Number(response.headers.get("X-Total-Rows")) || 0;
      var fallback = link.pathname.split("/").pop() || "export.csv";
      var filename = filenameFrom(response.headers.get("Content-Disposition"), fallback);
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var counter = new CsvRowCounter();
      var chunks = [];
      panel.label = "Downloading " + filename;
      panel.update(0, total);
      function rows() { return Math.max(0, counter.rows - 1); } // not the header
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            counter.push(decoder.decode());
            counter.end();
            return;
          }
          chunks.push(chunk.value);
          counter.push(decoder.decode(chunk.value, { stream: true }));
          panel.update(Math.min(rows(), total || rows()), total);
          return pump();
        });
      }
      return pump().then(function () {
        var url = URL.createObjectURL(new Blob(chunks, { type: "text/csv;charset=utf-8" }));
        var save = document.createElement("a");
        save.href = url;
        save.download = filename;
        save.hidden = true;
        document.body.appendChild(save);
        save.click();
        document.body.removeChild(save);
        window.setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
        panel.update(rows(), rows());
        panel.finish("Downloaded " + filename + ": " + count(rows()) + " rows.");
      });
    }).catch(function (error) {
      panel.fail(error && error.shown ? error.message
        : "The download was interrupted. Try again, or open the link in a new tab.");
    }).then(function () {
      panel.busy = false;
    });
  }

  function bind(root) {
    Array.prototype.forEach.call(root.querySelectorAll("form[data-progress]"), function (form) {
      if (form.progressPanel) { return; }
      form.progressPanel = new Panel(form);
      form.addEventListener("submit", function (event) {
        submitWithProgress(form, form.progressPanel, event);
      });
    });
    var links = root.querySelectorAll("a[data-progress-download]");
    if (!links.length) { return; }
    // One panel for the page's downloads, just before the table (or list) of links.
    var first = links[0];
    var anchor = first.closest("table") || first.parentNode;
    var panel = anchor.progressPanel || new Panel(anchor.parentNode, anchor);
    anchor.progressPanel = panel;
    Array.prototype.forEach.call(links, function (link) {
      if (link.progressBound) { return; }
      link.progressBound = true;
      link.addEventListener("click", function (event) { download(link, panel, event); });
    });
  }

  bind(document);
}());
