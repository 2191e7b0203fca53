// Live update: re-fetch the page's live part every 5 s and swap it in (no reload, no library).
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) return;
  var url = location.pathname + location.search + (location.search ? "&" : "?") + "part=live";
  function tick() {
    fetch(url, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        live.innerHTML = html;
        live.dataset.updates = String(Number(live.dataset.updates || 0) + 1);   // updates so far
      })
      .catch(function () { /* the job stopped: keep the last figures */ });
  }
  setInterval(tick, 5000);
})();
