// LTI Deep Linking 2.0 §4.5: the signed answer goes back to the VLE as a form post to its
// return URL. Sent at once; without JavaScript the page's button does the same.
(function () {
  "use strict";
  var form = document.querySelector("form[data-lti-auto-submit]");
  if (form) {
    form.submit();
  }
})();
