// pier's web UI: charts (uPlot over /projects/P/nodes/N/series), range buttons, copy
// buttons and the Models page's push (the chosen file as the request's raw body, as the
// REST push takes it). Everything else is htmx attributes; no inline script anywhere.
(function () {
  "use strict";
  var COLORS = ["#2457d6", "#d97706", "#b42318", "#157f3b", "#7c3aed", "#0891b2"];
  var range = "15m";
  var RANGE_S = { "15m": 900, "1h": 3600, "1d": 86400 };
  var plots = new Map();

  function width(figure) {
    return Math.max(240, Math.floor(figure.getBoundingClientRect().width));
  }

  function draw(figure, data) {
    var scale = parseFloat(figure.dataset.scale || "1");
    var columns = [data.t];
    var series = [{}];
    var points = 0;
    data.lines.forEach(function (line, i) {
      columns.push(line.values.map(function (v) {
        if (v === null) return null;
        points += 1;
        return v * scale;
      }));
      series.push({ label: line.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false });
    });
    figure.dataset.points = String(points);
    var old = plots.get(figure);
    if (old) { old.destroy(); plots.delete(figure); }
    var empty = figure.querySelector(".empty");
    if (empty) empty.remove();
    if (!points) {
      var note = document.createElement("div");
      note.className = "empty";
      note.textContent = "No data in this range yet.";
      figure.appendChild(note);
      return;
    }
    var opts = {
      width: width(figure), height: 170, series: series, legend: { live: false },
      scales: { x: { time: true, range: function () {
        var now = Date.now() / 1000;
        return [now - RANGE_S[range], now];
      } } },
      axes: [{}, { size: 60 }],
    };
    plots.set(figure, new uPlot(opts, columns, figure));
  }

  function refresh(container) {
    if (typeof uPlot === "undefined") return;
    container.querySelectorAll("[data-chart]").forEach(function (figure) {
      var url = container.dataset.series + "?metrics=" + encodeURIComponent(figure.dataset.metrics) + "&range=" + range;
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) draw(figure, data); })
        .catch(function () {});
    });
  }

  function flash(html) {
    document.getElementById("flash").innerHTML = html;
  }

  function csrfHeaders() {
    return JSON.parse(document.body.getAttribute("hx-headers") || "{}");
  }

  function pushModel(form) {
    var file = form.elements.file.files[0];
    var limit = parseInt(form.dataset.maxBytes, 10);
    if (!file) return;
    if (file.size > limit) {
      var banner = document.createElement("div");
      banner.className = "banner error";
      banner.setAttribute("role", "alert");
      banner.textContent = "the model upload is larger than models.max_upload_bytes (" + limit + " bytes, env PIER_MODELS__MAX_UPLOAD_BYTES)";
      flash(banner.outerHTML);
      return;
    }
    var query = new URLSearchParams({ name: form.elements.name.value.trim(), format: form.elements.format.value });
    if (form.elements.trust.checked) query.set("trust", "true");
    var headers = Object.assign(csrfHeaders(), { "Content-Type": "application/octet-stream", "HX-Request": "true" });
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    fetch(form.dataset.push + "?" + query.toString(), { method: "POST", body: file, headers: headers, credentials: "same-origin" })
      .then(function (r) {
        return r.text().then(function (html) {
          flash(html);
          if (r.ok && !r.headers.get("HX-Retarget")) return reloadModels();
        });
      })
      .catch(function () { flash('<div class="banner error" role="alert">The push failed: the server did not answer.</div>'); })
      .finally(function () { button.disabled = false; });
  }

  function reloadModels() {
    return fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("model-list");
        if (fresh) document.getElementById("model-list").replaceWith(fresh);
      });
  }

  function start() {
    var push = document.getElementById("push-model");
    if (push) {
      push.addEventListener("submit", function (event) { event.preventDefault(); pushModel(push); });
    }
    var container = document.querySelector(".charts[data-series]");
    if (container) {
      refresh(container);
      var period = parseFloat(container.dataset.pollS || "5") * 1000;
      setInterval(function () { if (!document.hidden) refresh(container); }, period);
      window.addEventListener("resize", function () {
        plots.forEach(function (plot, figure) { plot.setSize({ width: width(figure), height: 170 }); });
      });
      document.querySelectorAll("button[data-range]").forEach(function (button) {
        button.addEventListener("click", function () {
          range = button.dataset.range;
          document.querySelectorAll("button[data-range]").forEach(function (b) { b.classList.toggle("on", b === button); });
          refresh(container);
        });
      });
    }
    document.body.addEventListener("click", function (event) {
      var button = event.target.closest("[data-copy]");
      if (!button) return;
      var source = document.getElementById(button.dataset.copy);
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.textContent).then(function () { button.textContent = "Copied"; });
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
