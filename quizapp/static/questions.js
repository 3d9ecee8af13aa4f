// Word counts under essay boxes: a hint only; limits are checked by staff, not here.
(function () {
  "use strict";
  function words(text) {
    var trimmed = text.trim();
    return trimmed ? trimmed.split(/\s+/).length : 0;
  }
  function update(box) {
    var out = document.getElementById(box.id + "-count");
    if (!out) { return; }
    var n = words(box.value);
    var min = parseInt(box.dataset.minWords || "0", 10);
    var max = parseInt(box.dataset.maxWords || "0", 10);
    out.textContent = n + (n === 1 ? " word" : " words");
    out.classList.toggle("under", min > 0 && n > 0 && n < min);
    out.classList.toggle("over", max > 0 && n > max);
  }
  var boxes = document.querySelectorAll("textarea.essay-text");
  Array.prototype.forEach.call(boxes, function (box) {
    update(box);
    box.addEventListener("input", function () { update(box); });
  });
})();
