// Dev page entry (instead of index.js): the same panel, with the dev server's own
// origin allowed as well. In Photoshop the manifest decides what the panel may
// reach (src/origins.js); here the page reaches the bridge through this server.
(function () {
  "use strict";
  const { ALLOWED_ORIGINS } = window.require("./src/origins.js");
  const own = [location.origin, location.origin.replace(/^http/, "ws")];
  window.RB_PANEL = window.require("./src/main.js").start({ allowedOrigins: [...ALLOWED_ORIGINS, ...own] });
})();
