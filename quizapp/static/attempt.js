// The attempt page: a countdown that follows the server, autosave that never claims a
// save the server did not acknowledge, and a local queue that survives a lost
// connection or a reload.
//
// - Time: every API response carries the server's time and the current deadline. The
//   browser only measures elapsed time since then, so a wrong client clock is harmless,
//   and extra time granted by staff arrives with the next response (the status is polled
//   when the page has heard nothing from the server for data-poll-seconds, 30 s by
//   default: QUIZAPP_STATUS_POLL_SECONDS; a student who is saving needs no polls).
// - Saves: each change gets a sequence number "page base + counter" (the base is the
//   server's time when the page was rendered), so a late, older request never overwrites
//   a newer answer on the server. Unacknowledged answers wait in localStorage.
(function () {
  "use strict";

  var form = document.getElementById("attempt-form");
  if (!form || !window.fetch) { return; }

  var attemptId = form.dataset.attemptId;
  var statusUrl = form.dataset.statusUrl;
  var resultUrl = form.dataset.resultUrl;
  var seqBase = Number(form.dataset.seqBase);
  var pollEvery = (Number(form.dataset.pollSeconds) || 30) * 1000;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";
  var storeKey = "quizapp:attempt:" + attemptId + ":pending";
  var countdown = document.getElementById("countdown");
  var announcer = document.getElementById("countdown-announcer");
  var summary = document.getElementById("save-summary");

  var counter = 0;
  var deadline = countdown ? Date.parse(countdown.dataset.deadline) : null;
  var offset = countdown ? Date.parse(countdown.dataset.serverNow) - Date.now() : 0;
  var pending = loadPending();   // slot -> {values: [...], seq: 123, typedAt: "…"}
  var inFlight = {};             // slot -> the promise of the PUT on its way
  var timers = {};
  var retryDelay = 2000;
  var retryTimer = null;
  var finishing = false;
  var finished = false;
  var warned = {};
  var held = {};                 // slot -> the values the server holds or is being sent
  var pollTimer = null;

  // ---------- local queue ----------
  function loadPending() {
    try { return JSON.parse(window.localStorage.getItem(storeKey)) || {}; }
    catch (e) { return {}; }
  }
  function storePending() {
    try {
      if (Object.keys(pending).length) {
        window.localStorage.setItem(storeKey, JSON.stringify(pending));
      } else {
        window.localStorage.removeItem(storeKey);
      }
    } catch (e) { /* private mode: the in-memory queue still works */ }
  }
  function nextSeq() { counter += 1; return seqBase + counter; }

  // ---------- reading and writing the form ----------
  function fieldsOf(slot) { return form.querySelectorAll('[name="slot-' + slot + '"]'); }

  function valuesOf(slot) {
    var out = [];
    fieldsOf(slot).forEach(function (el) {
      if (el.type === "radio" || el.type === "checkbox") {
        if (el.checked) { out.push(el.value); }
      } else {
        out.push(el.value);
      }
    });
    return out;
  }

  function applyValues(slot, values) {
    var fields = fieldsOf(slot);
    var i = 0;
    fields.forEach(function (el) {
      if (el.type === "radio" || el.type === "checkbox") {
        el.checked = values.indexOf(el.value) !== -1;
      } else {
        el.value = i < values.length ? values[i] : "";
        i += 1;
      }
    });
  }

  function slotOf(el) {
    var match = /^slot-(\d+)$/.exec(el.name || "");
    return match ? match[1] : null;
  }

  // ---------- what the student sees ----------
  function setState(slot, text, kind) {
    var el = document.getElementById("save-state-" + slot);
    if (!el) { return; }
    el.textContent = text;
    el.classList.toggle("unsaved", kind === "unsaved");
    el.classList.toggle("problem", kind === "problem");
  }

  function updateNav(slot) {
    var link = document.getElementById("nav-" + slot);
    if (!link) { return; }
    var answered = valuesOf(slot).some(function (v) { return v.trim() !== ""; });
    var button = form.querySelector('.flag-button[data-slot="' + slot + '"]');
    var flagged = button && button.getAttribute("aria-pressed") === "true";
    link.classList.toggle("answered", answered);
    link.classList.toggle("flagged", !!flagged);
    var hidden = link.querySelector(".visually-hidden");
    if (hidden) { hidden.textContent = (answered ? ", answered" : "") + (flagged ? ", flagged" : ""); }
  }

  function updateSummary(offline) {
    if (!summary) { return; }
    var waiting = Object.keys(pending).length;
    if (finishing) {
      summary.textContent = "Time is up. " +
        (waiting ? "Sending your last answers…" : "Your answers are saved; finishing the attempt…");
      summary.className = "save-summary problem";
      return;
    }
    if (waiting === 0) {
      summary.textContent = "All answers saved.";
      summary.className = "save-summary";
    } else if (offline) {
      summary.textContent = "No connection: " + waiting + " answer" + (waiting === 1 ? "" : "s") +
        " kept on this device and not saved yet. Retrying…";
      summary.className = "save-summary problem";
    } else {
      summary.textContent = "Saving " + waiting + " answer" + (waiting === 1 ? "" : "s") + "…";
      summary.className = "save-summary unsaved";
    }
  }

  // ---------- talking to the server ----------
  function api(method, url, body, keepalive) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      keepalive: !!keepalive,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    });
  }

  function followServerClock(data) {
    schedulePoll();
    if (data.server_now) { offset = Date.parse(data.server_now) - Date.now(); }
    if (data.deadline) {
      var changed = deadline !== null && Date.parse(data.deadline) !== deadline;
      deadline = Date.parse(data.deadline);
      if (changed) {
        warned = {};
        announce("Your deadline has changed: you now have until " +
          new Date(deadline).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + ".");
      }
    }
    if (data.state && data.state !== "in_progress" && !finishing) { goToResult(data.result_url); }
  }

  function goToResult(url) {
    finished = true;
    window.location.assign(url || resultUrl);
  }

  function sendSlot(slot, keepalive) {
    var item = pending[slot];
    if (!item) { return Promise.resolve(true); }
    if (inFlight[slot]) {
      // Wait for the PUT on its way (and its resend of a newer value): time-up must not
      // overtake a slow last autosave and finish the attempt without it.
      return inFlight[slot].then(function (ok) {
        return ok && pending[slot] ? sendSlot(slot, keepalive) : ok;
      });
    }
    var url = "/api/attempts/" + attemptId + "/answers/" + slot;
    held[slot] = JSON.stringify(item.values);
    var body = { value: item.values, seq: item.seq };
    if (item.typedAt) { body.typed_at = item.typedAt; }
    var request = api("PUT", url, body, keepalive)
      .then(function (r) {
        inFlight[slot] = false;
        var current = pending[slot];
        if (r.status === 200) {
          followServerClock(r.data);
          if (current && current.seq === item.seq) { delete pending[slot]; storePending(); }
          if (r.data.status === "stale") {
            delete held[slot];
            setState(slot, "A newer answer from another window is saved. Reload the page to see it.", "problem");
          } else if (!pending[slot]) {
            setState(slot, "Saved " + r.data.saved_at_local, "saved");
          }
          retryDelay = 2000;
          updateSummary(false);
          if (pending[slot]) { sendSlot(slot); }  // changed again while this was on its way
          return true;
        }
        if (r.status === 409) {
          // Too late or already finished: the server has finalised with what it holds.
          // It keeps what arrived late as evidence ("recorded"); only then may this
          // device forget its copy.
          if (r.data && r.data.recorded) { delete pending[slot]; storePending(); }
          setState(slot, r.data.error || "The time for this attempt is over.", "problem");
          followServerClock({ state: "finished" });
          if (!finishing) { goToResult(); }
          return true;
        }
        if (r.status === 400 && r.data && r.data.error && /expired|not sent by this site/.test(r.data.error)) {
          setState(slot, "Your session has ended: log in again; this answer is kept on this device.", "problem");
          return false;
        }
        setState(slot, "Not saved: " + (r.data.error || "the server refused this answer") + ".", "problem");
        return false;
      })
      .catch(function () {
        inFlight[slot] = false;
        setState(slot, "Not saved yet: no connection. Kept on this device; retrying.", "problem");
        scheduleRetry();
        updateSummary(true);
        return false;
      });
    inFlight[slot] = request;
    return request;
  }

  function flush(keepalive) {
    var slots = Object.keys(pending);
    return Promise.all(slots.map(function (slot) { return sendSlot(slot, keepalive); }))
      .then(function (results) {
        updateSummary(results.indexOf(false) !== -1 && !navigator.onLine);
        return results.every(Boolean);
      });
  }

  function scheduleRetry() {
    if (retryTimer) { return; }
    retryTimer = setTimeout(function () {
      retryTimer = null;
      flush();
    }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }

  function queueSlot(slot, delay) {
    var values = valuesOf(slot);
    var same = JSON.stringify(values);
    // The change event that follows typing (on leaving the field) repeats a value the
    // input events already sent: nothing new to save.
    if (!pending[slot] && held[slot] === same) { return; }
    if (!pending[slot] || JSON.stringify(pending[slot].values) !== same) {
      // typedAt: this device's reading of the server's time when the answer changed,
      // kept with an answer that arrives late (evidence; the server decides nothing by it).
      pending[slot] = { values: values, seq: nextSeq(), typedAt: new Date(Date.now() + offset).toISOString() };
      storePending();
    }
    setState(slot, "Not saved yet", "unsaved");
    updateNav(slot);
    updateSummary(false);
    clearTimeout(timers[slot]);
    timers[slot] = setTimeout(function () { sendSlot(slot); }, delay);
  }

  // ---------- events ----------
  form.addEventListener("change", function (event) {
    var slot = slotOf(event.target);
    if (slot) { queueSlot(slot, 300); }
  });
  form.addEventListener("input", function (event) {
    var slot = slotOf(event.target);
    if (slot && event.target.type !== "radio" && event.target.type !== "checkbox") {
      queueSlot(slot, 1500);
    }
  });

  // The plain form post (Save / Save and finish) carries every answer: give it the
  // newest sequence so it cannot lose to this page's earlier autosaves.
  form.addEventListener("submit", function () {
    var seq = nextSeq();
    var hidden = form.querySelector('input[name="seq"]');
    if (hidden) { hidden.value = seq; }
    Object.keys(pending).forEach(function (slot) { pending[slot].seq = seq; });
    storePending();
  });

  form.querySelectorAll(".flag-button").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var slot = button.dataset.slot;
      var flagged = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", flagged ? "true" : "false");
      updateNav(slot);
      api("PUT", "/api/attempts/" + attemptId + "/flags/" + slot, { flagged: flagged })
        .then(function (r) { if (r.status === 200) { followServerClock(r.data); } })
        .catch(function () { /* a flag is a reminder for the student; nothing is lost */ });
    });
  });

  // Leaving the page (another tab, closing the laptop): send what is waiting.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { flush(true); }
  });
  window.addEventListener("pagehide", function () { flush(true); });
  window.addEventListener("online", function () { retryDelay = 2000; flush(); });
  document.querySelectorAll(".question-nav a").forEach(function (link) {
    link.addEventListener("click", function () { flush(); });
  });

  // ---------- countdown ----------
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function format(ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return (h > 0 ? h + ":" + pad(m) : String(m)) + ":" + pad(s);
  }
  function announce(text) { if (announcer) { announcer.textContent = text; } }

  function timeUp() {
    finishing = true;
    if (countdown) { countdown.textContent = "0:00"; }
    announce("Time is up. Your last answers are being saved.");
    if (summary) {  // seen, not only heard
      summary.textContent = "Time is up. Sending your last answers…";
      summary.className = "save-summary problem";
    }
    // Send everything waiting (the server accepts saves for a short grace period),
    // then ask the server to finish the attempt, then show the result.
    Object.keys(timers).forEach(function (slot) { clearTimeout(timers[slot]); });
    flush().then(function () {
      return api("POST", "/api/attempts/" + attemptId + "/time-up", {});
    }).then(function (r) {
      if (r.data && r.data.state && r.data.state !== "in_progress") {
        goToResult(r.data.result_url);
      } else {
        finishing = false;  // the server's clock says not yet: keep counting
        if (r.data) { followServerClock(r.data); }
      }
    }).catch(function () {
      finishing = false;
      scheduleRetry();
    });
  }

  function tick() {
    if (finished || !countdown || deadline === null) { return; }
    var left = deadline - (Date.now() + offset);
    if (!finishing) { countdown.textContent = format(left); }
    countdown.classList.toggle("warning", left <= 5 * 60 * 1000);
    countdown.classList.toggle("urgent", left <= 60 * 1000);
    [5, 1].forEach(function (minutes) {
      if (!warned[minutes] && left <= minutes * 60 * 1000 && left > (minutes - 1) * 60 * 1000) {
        warned[minutes] = true;
        announce(minutes + (minutes === 1 ? " minute" : " minutes") + " left.");
      }
    });
    if (left <= 0 && !finishing) { timeUp(); }
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, pollEvery);
  }

  function poll() {
    if (finished) { return; }
    api("GET", statusUrl).then(function (r) {
      if (r.status === 200) { followServerClock(r.data); } else { schedulePoll(); }
    }).catch(function () { schedulePoll(); /* offline: the countdown carries on */ });
  }

  // ---------- the sticky bar ----------
  // The bar with the countdown stays at the top of the window: scroll padding as tall
  // as the bar keeps what gets focus (Tab, Shift+Tab, a jump from the question list)
  // from being scrolled underneath it. The bar's height changes with width and zoom.
  var bar = document.getElementById("attempt-bar");
  function clearOfBar() {
    var sticky = bar && window.getComputedStyle(bar).position === "sticky";
    document.documentElement.style.scrollPaddingTop = sticky ? (bar.offsetHeight + 8) + "px" : "0";
  }
  if (bar) {
    clearOfBar();
    if (window.ResizeObserver) { new ResizeObserver(clearOfBar).observe(bar); }
    window.addEventListener("resize", clearOfBar);
  }

  // ---------- start ----------
  // Answers typed before a reload or a lost connection, never acknowledged: put them
  // back in the form and send them again (with their original sequence numbers).
  form.querySelectorAll('[name^="slot-"]').forEach(function (el) {
    var slot = slotOf(el);
    if (slot && !(slot in held)) { held[slot] = JSON.stringify(valuesOf(slot)); }  // as rendered
  });
  Object.keys(pending).forEach(function (slot) {
    applyValues(slot, pending[slot].values);
    setState(slot, "Not saved yet (restored on this device)", "unsaved");
    updateNav(slot);
  });
  updateSummary(false);
  flush();
  tick();
  setInterval(tick, 1000);
  schedulePoll();
})();
