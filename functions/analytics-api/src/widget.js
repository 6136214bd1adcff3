/* Partner Hub widget loader. Install with the snippet from Ready for Installation:
   <script async src=".../widget.js" data-channel="widget" data-key="wk_..." data-endpoint=".../api/v0/widget/events"></script>
   It reports the visitor's session on load; call PartnerHub.track(query, contentFound)
   for each question asked. */
(function () {
  var script = document.currentScript;
  if (!script) return;
  var key = script.getAttribute("data-key");
  var endpoint = script.getAttribute("data-endpoint");
  function id(store, name) {
    try {
      var value = store.getItem(name);
      if (!value) {
        value = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random()).slice(2) + Date.now();
        store.setItem(name, value);
      }
      return value;
    } catch (e) {
      return "anonymous";
    }
  }
  var userId = id(window.localStorage, "partnerhub.user");
  var sessionId = id(window.sessionStorage, "partnerhub.session");
  function send(body) {
    body.key = key;
    body.userId = userId;
    body.sessionId = sessionId;
    return fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      keepalive: true
    }).catch(function () {});
  }
  window.PartnerHub = window.PartnerHub || {};
  window.PartnerHub.track = function (query, contentFound) {
    return send({ query: String(query), contentFound: !!contentFound });
  };
  send({});
})();
