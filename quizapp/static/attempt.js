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
// - Deadline changes (staff granted extra time, or shortened it): the end time in the
//   bar, a visible banner and the screen-reader announcement say the same thing, in the
//   course's zone and 24-hour clock as the server formats it (`deadline_local`), never
//   in the browser's locale.
// - Two windows: another window (or device) may save a different answer. When a save
//   from this page comes back "stale" (the other answer has a higher sequence), the
//   page puts the server's answer in the form and offers to keep the one it had,
//   re-sent with a sequence above the server's; until the student chooses, the summary
//   says so. When the status poll shows a newer answer for a question this page is not
//   changing, the page shows it (the newer action wins, as on the server). The summary
//   never says "All answers saved." over an answer the server does not hold.
(function () {
  "use strict";

  var form = document.getElementById("attempt-form");
  if (!form || !window.fetch) { return; }

  var attemptId = form.dataset.attemptId;
  var statusUrl = form.dataset.statusUrl;
  var resultUrl = form.dataset.resultUrl;
  var seqBase = Number(form.dataset.seqBase);
  var seqFactor = Number(form.dataset.seqFactor) || 100000;
  var pollEvery = (Number(form.dataset.pollSeconds) || 30) * 1000;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";
  var storeKey = "quizapp:attempt:" + attemptId + ":pending";
  var countdown = document.getElementById("countdown");
  var announcer = document.getElementById("countdown-announcer");
  var summary = document.getElementById("save-summary");
  var deadlineLocal = document.getElementById("deadline-local");
  var banner = document.getElementById("deadline-banner");

  var counter = 0;
  var deadline = countdown ? Date.parse(countdown.dataset.deadline) : null;
  var offset = countdown ? Date.parse(countdown.dataset.serverNow) - Date.now() : 0;
  var pending = loadPending();   // slot -> {values: [...], seq: 123, typedAt: "…"}
  var inFlight = {};             // slot -> the promise of the PUT on its way
  var timers = {};
  var retryDelay = 2000;
  var retryTimer = null;
  var finishing = false;
  var timeIsUp = false;          // the countdown reached zero (until the server says otherwise)
  var quietUntil = 0;
  var finishTimer = null;            // no countdown warning until then: let an announcement be heard
  var finished = false;
  var warned = {};
  var held = {};                 // slot -> the values the server holds or is being sent
  var pollTimer = null;
  var known = {};                // slot -> the sequence of the answer the server holds, as far as this page knows
  var conflicts = {};            // slot -> {local: values this page had, savedAt: "10:42:13 GMT", offer: bool, loaded: bool}
  var loadingServer = false;
  var loadTimer = null;
  var applying = false;          // values being put in the form by this script, not typed

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
  // This page has seen another window's answer (sequence `seq`): what the student does
  // here next is newer than it. Restart the sequence as a page loaded now would (the
  // server's time, see page_sequence_base), and above `seq`. Not merely seq + 1: the
  // other window keeps counting from its own base and would reach the same number, and a
  // tie is no winner.
  function seqAbove(seq) {
    var next = Math.max(Math.floor((Date.now() + offset) / 100) * seqFactor, seq);
    if (seqBase + counter < next) { seqBase = next; counter = 0; }
  }

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
    applying = true;
    fields.forEach(function (el) {
      if (el.type === "radio" || el.type === "checkbox") {
        el.checked = values.indexOf(el.value) !== -1;
      } else {
        el.value = i < values.length ? values[i] : "";
        i += 1;
        // Other scripts follow the box (the essay's word count); this one ignores it.
        el.dispatchEvent(new Event("input", { bubbles: true }));
      }
    });
    applying = false;
  }

  // The values as the student sees them: option letters (printed beside each option),
  // the entries chosen in lists, the text typed.
  function describeValues(slot, values) {
    var parts = [];
    var i = 0;
    fieldsOf(slot).forEach(function (el) {
      if (el.type === "radio" || el.type === "checkbox") {
        if (values.indexOf(el.value) !== -1) { parts.push(el.value); }
      } else {
        var v = i < values.length ? values[i] : "";
        i += 1;
        if (v.trim() !== "") { parts.push(v.replace(/\s+/g, " ").trim()); }
      }
    });
    var text = parts.join(", ");
    if (!text) { return "no answer"; }
    return "“" + (text.length > 120 ? text.slice(0, 119) + "…" : text) + "”";
  }

  function numberOf(slot) {
    var state = document.getElementById("save-state-" + slot);
    var section = state && state.closest("section.question");
    return section ? section.id.replace(/^q/, "") : slot;
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
    if (timeIsUp) {
      summary.textContent = "Time is up. " + (!waiting
        ? "Your answers are saved; finishing the attempt…"
        : offline
          ? "No connection: your last answers are kept on this device and will be sent when it is back."
          : "Sending your last answers…");
      summary.className = "save-summary problem";
      return;
    }
    var offers = [], loading = [];
    Object.keys(conflicts).forEach(function (slot) {
      (conflicts[slot].offer ? offers : loading).push(numberOf(slot));
    });
    var also = waiting ? " Saving " + waiting + " other answer" + (waiting === 1 ? "" : "s") + "…" : "";
    if (offers.length) {
      summary.textContent = (offers.length === 1
        ? "Question " + offers[0] + " has a newer answer from another window: check it and choose which to keep."
        : "Questions " + offers.join(", ") + " have newer answers from another window: check them and choose which to keep.") + also;
      summary.className = "save-summary problem";
    } else if (loading.length) {
      summary.textContent = "Loading the answer" + (loading.length === 1 ? " to question " : "s to questions ") +
        loading.join(", ") + " saved in another window…" + also;
      summary.className = "save-summary unsaved";
    } else if (waiting === 0) {
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
    if ("deadline" in data) {
      var next = data.deadline ? Date.parse(data.deadline) : null;
      if (next !== deadline) {
        deadlineMoved(deadline, next, data.deadline_local || "");
        deadline = next;
        tick();  // the countdown moves with the end time, not a second later
      }
    }
    if (data.state && data.state !== "in_progress" && !finishing) { goToResult(data.result_url); }
  }

  // "14:41:01 GMT" (the server's format) -> "14:41 GMT": the banner's minute precision.
  function minuteOf(local) { return local.replace(/^(\d\d:\d\d):\d\d/, "$1"); }
  function amount(ms) {
    var total = Math.round(Math.abs(ms) / 1000);
    var m = Math.floor(total / 60), s = total % 60;
    return [m ? m + " min" : "", s ? s + " s" : ""].join(" ").trim();
  }

  // The bar's end time, a visible banner and the announcement say the same thing.
  function deadlineMoved(before, after, local) {
    var text;
    if (after === null) {
      text = "Your attempt no longer has a time limit";
    } else if (before === null) {
      text = "Your deadline is now " + minuteOf(local);
    } else if (after > before) {
      text = "Your deadline is now " + minuteOf(local) + " (+" + amount(after - before) + ")";
    } else {
      text = "Your deadline has been moved earlier: it is now " + minuteOf(local) +
        " (" + amount(before - after) + " less)";
    }
    warned = {};
    if (deadlineLocal) { deadlineLocal.textContent = after === null ? "no time limit" : local; }
    if (banner) {
      banner.textContent = text;
      banner.hidden = false;
      banner.classList.toggle("earlier", before !== null && after !== null && after < before);
    }
    announce(text);
    // A warning in the same moment would replace this text in the live region before a
    // screen reader has read it.
    quietUntil = Date.now() + 1500;
    if (after === null && countdown) {
      countdown.textContent = "no time limit";
      countdown.classList.remove("warning", "urgent");
    }
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
          known[slot] = Math.max(known[slot] || 0, r.data.seq);
          if (r.data.status === "stale") {
            // Another window saved a different answer with a higher sequence: show it,
            // and offer to keep what is on this page (typed here since, included).
            seqAbove(r.data.seq);
            openConflict(slot, valuesOf(slot), r.data.saved_at_local, true);
            return true;
          }
          if (current && current.seq === item.seq) { delete pending[slot]; storePending(); }
          if (!pending[slot]) {
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
    // Changing the answer after seeing the other window's answers is the choice.
    if (conflicts[slot]) { closeConflict(slot); }
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

  // ---------- another window's answers ----------
  // offer: this page had an answer of its own that lost (a stale save), which the
  // student may want to keep; otherwise the page only follows the other window.
  function openConflict(slot, local, savedAt, offer) {
    delete pending[slot];
    storePending();
    clearTimeout(timers[slot]);
    conflicts[slot] = { local: local, savedAt: savedAt || "", offer: offer, loaded: false };
    setState(slot, "Another window saved a different answer" + (savedAt ? " at " + savedAt : "") +
      ". Loading it…", "problem");
    updateSummary(false);
    loadServerAnswers();
  }

  function closeConflict(slot) {
    delete conflicts[slot];
    var offer = document.getElementById("conflict-" + slot);
    if (offer) { offer.remove(); }
    updateSummary(false);
  }

  function scheduleLoad() {
    clearTimeout(loadTimer);
    loadTimer = setTimeout(loadServerAnswers, retryDelay);
  }

  // The answers the server holds, as form values (asked for only when needed).
  function loadServerAnswers() {
    if (loadingServer || finished) { return; }
    loadingServer = true;
    api("GET", statusUrl + "?form_values=1").then(function (r) {
      loadingServer = false;
      if (r.status !== 200 || !r.data.form_values) { scheduleLoad(); return; }
      followServerClock(r.data);
      var answers = r.data.answers || {};
      Object.keys(conflicts).forEach(function (slot) {
        var conflict = conflicts[slot];
        var stored = answers[slot];
        if (conflict.loaded && !(stored && stored.seq > (known[slot] || 0))) { return; }
        if (stored) { known[slot] = Math.max(known[slot] || 0, stored.seq); seqAbove(stored.seq); }
        applyValues(slot, r.data.form_values[slot] || []);
        var shown = JSON.stringify(valuesOf(slot));
        held[slot] = shown;
        updateNav(slot);
        conflict.loaded = true;
        conflict.savedAt = stored ? stored.saved_at_local : conflict.savedAt;
        if (shown === JSON.stringify(conflict.local)) {  // the same answer after all
          closeConflict(slot);
          setState(slot, "Saved " + conflict.savedAt, "saved");
        } else if (!conflict.offer) {
          closeConflict(slot);
          setState(slot, "Changed in another window: saved " + conflict.savedAt, "saved");
        } else {
          showOffer(slot, conflict);
        }
      });
      updateSummary(false);
    }).catch(function () {
      loadingServer = false;
      scheduleLoad();
    });
  }

  function showOffer(slot, conflict) {
    setState(slot, "Another window saved a different answer" +
      (conflict.savedAt ? " at " + conflict.savedAt : "") + ": it is shown above. This page had " +
      describeValues(slot, conflict.local) + ".", "problem");
    var old = document.getElementById("conflict-" + slot);
    if (old) { old.remove(); }
    var offer = document.createElement("div");
    offer.className = "answer-conflict";
    offer.id = "conflict-" + slot;
    var keepMine = document.createElement("button");
    keepMine.type = "button";
    keepMine.className = "button";
    keepMine.textContent = "Keep the answer on this page";
    var keepSaved = document.createElement("button");
    keepSaved.type = "button";
    keepSaved.className = "button";
    keepSaved.textContent = "Keep the saved answer";
    offer.appendChild(keepMine);
    offer.appendChild(keepSaved);
    var state = document.getElementById("save-state-" + slot);
    state.insertAdjacentElement("afterend", offer);
    keepMine.addEventListener("click", function () {
      closeConflict(slot);
      applyValues(slot, conflict.local);
      queueSlot(slot, 0);  // a new sequence, above the other window's
      focusState(slot);
    });
    keepSaved.addEventListener("click", function () {
      closeConflict(slot);
      setState(slot, "Saved " + conflict.savedAt, "saved");
      focusState(slot);
    });
  }

  // The buttons go away once used: focus stays in the question, on what it now says.
  function focusState(slot) {
    var state = document.getElementById("save-state-" + slot);
    if (state) { state.setAttribute("tabindex", "-1"); state.focus(); }
  }

  // The status poll: a higher sequence than this page knows, for an answer this page is
  // not sending, was saved elsewhere.
  function noticeOtherWindows(answers) {
    Object.keys(answers || {}).forEach(function (slot) {
      var stored = answers[slot];
      if (stored.seq > (known[slot] || 0) && !pending[slot] && !inFlight[slot] && !conflicts[slot]) {
        openConflict(slot, valuesOf(slot), stored.saved_at_local, false);
      }
    });
  }

  // ---------- events ----------
  form.addEventListener("change", function (event) {
    if (applying) { return; }
    var slot = slotOf(event.target);
    if (slot) { queueSlot(slot, 300); }
  });
  form.addEventListener("input", function (event) {
    if (applying) { return; }
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
  window.addEventListener("online", function () {
    retryDelay = 2000;
    if (timeIsUp) { clearTimeout(finishTimer); finishAtDeadline(); } else { flush(); }
  });
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
    if (!timeIsUp) { announce("Time is up. Your last answers are being saved."); }
    timeIsUp = true;
    if (countdown) { countdown.textContent = "0:00"; }
    updateSummary(false);  // seen, not only heard
    Object.keys(timers).forEach(function (slot) { clearTimeout(timers[slot]); });
    finishAtDeadline();
  }

  // Send everything waiting (the server accepts saves for a short grace period), then
  // ask the server to finish the attempt, then show the result. Offline, try again
  // later, still "Time is up" on screen (not a flicker back to the countdown's states,
  // and not a new announcement and time-up request every second).
  function finishAtDeadline() {
    flush().then(function () {
      return api("POST", "/api/attempts/" + attemptId + "/time-up", {});
    }).then(function (r) {
      if (r.data && r.data.state && r.data.state !== "in_progress") {
        goToResult(r.data.result_url);
      } else {
        finishing = false;  // the server's clock says not yet: keep counting
        timeIsUp = false;
        if (r.data) { followServerClock(r.data); }
        updateSummary(false);
      }
    }).catch(function () {
      updateSummary(true);
      clearTimeout(finishTimer);
      finishTimer = setTimeout(finishAtDeadline, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }

  function tick() {
    if (finished || !countdown || deadline === null) { return; }
    var left = deadline - (Date.now() + offset);
    if (!finishing) { countdown.textContent = format(left); }
    countdown.classList.toggle("warning", left <= 5 * 60 * 1000);
    countdown.classList.toggle("urgent", left <= 60 * 1000);
    [5, 1].forEach(function (minutes) {
      if (Date.now() < quietUntil) { return; }  // the next tick says it
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
      if (r.status === 200) {
        followServerClock(r.data);
        noticeOtherWindows(r.data.answers);
      } else { schedulePoll(); }
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
  form.querySelectorAll(".save-state[data-seq]").forEach(function (el) {
    if (el.dataset.seq) { known[el.dataset.slot] = Number(el.dataset.seq); }
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
