// LTI Dynamic Registration from inside the VLE's frame: the registration ran in a
// window this page opened (the frame could not sign anyone in). That window's close
// message (§3.7) reaches this page, its opener; pass it on to the VLE around us.
(function () {
  "use strict";
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.origin !== window.location.origin || !data) return;
    if (data.subject !== "org.imsglobal.lti.close") return;
    if (window.parent !== window) {
      window.parent.postMessage({ subject: "org.imsglobal.lti.close" }, "*");
    }
  });
})();
