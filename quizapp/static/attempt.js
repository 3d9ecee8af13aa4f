// Countdown driven by the server: the page carries the deadline and the server's time
// at render; the browser only measures elapsed time, so a wrong client clock is harmless.
(function () {
  "use strict";
  var el = document.getElementById("countdown");
  var form = document.getElementById("attempt-form");
  if (!el || !form) { return; }
  var announcer = document.getElementById("countdown-announcer");
  var deadline = Date.parse(el.dataset.deadline);
  var serverNow = Date.parse(el.dataset.serverNow);
  var offset = serverNow - Date.now();  // add to the client clock to get server time
  var warned = {};
  var finished = false;

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function format(ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return (h > 0 ? h + ":" + pad(m) : String(m)) + ":" + pad(s);
  }

  function announce(text) { if (announcer) { announcer.textContent = text; } }

  function timeUp() {
    finished = true;
    el.textContent = "0:00";
    announce("Time is up. Your answers are being saved and submitted.");
    var action = document.createElement("input");
    action.type = "hidden"; action.name = "action"; action.value = "time-up";
    form.appendChild(action);
    form.submit();
  }

  function tick() {
    if (finished) { return; }
    var left = deadline - (Date.now() + offset);
    el.textContent = format(left);
    el.classList.toggle("warning", left <= 5 * 60 * 1000);
    el.classList.toggle("urgent", left <= 60 * 1000);
    [5, 1].forEach(function (minutes) {
      if (!warned[minutes] && left <= minutes * 60 * 1000 && left > 0) {
        warned[minutes] = true;
        announce(minutes + (minutes === 1 ? " minute" : " minutes") + " left.");
      }
    });
    if (left <= 0) { timeUp(); }
  }

  tick();
  setInterval(tick, 1000);
})();
