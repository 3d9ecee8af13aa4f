// LTI Dynamic Registration 1.0 §3.7: the registration is done; the VLE that opened this
// page (as a window or in an iframe) closes it and goes on with its own steps.
(function () {
  "use strict";
  var target = window.opener || (window.parent !== window ? window.parent : null);
  if (target) {
    target.postMessage({ subject: "org.imsglobal.lti.close" }, "*");
  }
})();
