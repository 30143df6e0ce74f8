// xrm console: draw the Vega-Lite charts, ask before destructive forms. No framework, no network.
(function () {
  "use strict";
  function draw() {
    if (typeof vegaEmbed !== "function") { return; }
    document.querySelectorAll(".chart[data-spec]").forEach(function (el) {
      var script = document.getElementById("spec-" + el.dataset.spec);
      if (!script) { return; }
      var spec = JSON.parse(script.textContent);
      vegaEmbed(el, spec, { actions: false, renderer: "svg" })
        .then(function () { el.dataset.rendered = "1"; })
        .catch(function (err) { el.textContent = "chart: " + err; el.dataset.rendered = "error"; });
    });
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) { ev.preventDefault(); }
  });
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a[data-back]");
    if (a && window.history.length > 1) { ev.preventDefault(); window.history.back(); }
  });
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
