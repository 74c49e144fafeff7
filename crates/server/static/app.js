// Takarir web page, progressive enhancement: drag and drop, paste, previews, upload progress,
// several files, copy buttons. Without this script the form posts to the server and the page
// comes back with the captions. Loaded from /static (CSP script-src 'self'); builds the DOM with
// textContent only, never HTML strings.
(function () {
  "use strict";
  var form = document.getElementById("caption-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var input = document.getElementById("image");
  var zone = document.getElementById("dropzone");
  var section = document.getElementById("results");
  var list = document.getElementById("result-list");
  var t = function (k) { return form.getAttribute("data-t-" + k) || ""; };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  function copyButton(text) {
    var b = el("button", "copy", t("copy"));
    b.type = "button";
    b.addEventListener("click", function () {
      var done = function () { b.textContent = t("copied"); setTimeout(function () { b.textContent = t("copy"); }, 1500); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () {});
      }
    });
    return b;
  }

  function addCopyButtons(root) {
    var items = root.querySelectorAll("li.caption");
    for (var i = 0; i < items.length; i++) {
      if (!items[i].querySelector("button")) { items[i].appendChild(copyButton(items[i].firstChild ? items[i].firstChild.textContent : "")); }
    }
  }
  addCopyButtons(document);

  function option(name) {
    var f = form.elements[name];
    if (!f) { return null; }
    if (f.type === "checkbox") { return f.checked ? "true" : "false"; }
    return f.value;
  }

  var uiLang = form.getAttribute("data-ui-lang") || "id";
  function nameOf(x) { return uiLang === "en" ? x.name_en : x.name_id; }
  function pct(x) { return Math.round(100 * x) + "%"; }

  // Objects and tags as one line each: "Detected objects: cat (95%), bed (61%)".
  function labels(cls, head, items) {
    var p = el("p", "labels " + cls);
    p.appendChild(el("span", "label-head", head + ":"));
    var text = items.length ? items.map(function (x) { return nameOf(x) + " (" + pct(x.confidence) + ")"; }).join(", ") : t("none");
    p.appendChild(document.createTextNode(" " + text));
    return p;
  }

  // Boxes over the preview, in percent of the upright image, each labelled with its class.
  function drawBoxes(li, data) {
    var wrap = li.querySelector(".preview");
    if (!wrap || !data.objects || !data.image || !data.image.width) { return; }
    data.objects.forEach(function (o) {
      var b = el("span", "box");
      b.setAttribute("aria-hidden", "true");
      b.style.left = (100 * o.box.x / data.image.width) + "%";
      b.style.top = (100 * o.box.y / data.image.height) + "%";
      b.style.width = (100 * o.box.width / data.image.width) + "%";
      b.style.height = (100 * o.box.height / data.image.height) + "%";
      b.appendChild(el("span", "box-label", nameOf(o)));
      wrap.appendChild(b);
    });
  }

  // The lines read, in reading order: "Text read: 1. JALAN DITUTUP (97%)".
  function textLines(text) {
    var div = el("div", "text-read");
    div.appendChild(el("p", "label-head", t("text") + ":"));
    if (!text.lines.length) { div.appendChild(el("p", null, t("none"))); return div; }
    var ol = el("ol", "text-lines");
    text.lines.forEach(function (l) { ol.appendChild(el("li", null, l.text + " (" + pct(l.confidence) + ")")); });
    div.appendChild(ol);
    return div;
  }

  // The lines' polygons over the preview: an SVG in the upright image's pixel coordinates,
  // stretched over the picture.
  function drawLines(li, data) {
    var wrap = li.querySelector(".preview");
    if (!wrap || !data.text || !data.text.lines.length || !data.image || !data.image.width) { return; }
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "text-boxes");
    svg.setAttribute("viewBox", "0 0 " + data.image.width + " " + data.image.height);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-hidden", "true");
    data.text.lines.forEach(function (l) {
      var p = document.createElementNS(ns, "polygon");
      p.setAttribute("points", l.polygon.map(function (xy) { return xy[0] + "," + xy[1]; }).join(" "));
      p.setAttribute("vector-effect", "non-scaling-stroke");
      svg.appendChild(p);
    });
    wrap.appendChild(svg);
  }

  function showResult(li, data) {
    var ul = el("ul", "captions");
    (data.captions || []).forEach(function (c) {
      var item = el("li", "caption" + (c.needs_review ? " review" : ""), c.text);
      item.lang = c.lang;
      if (c.needs_review) {
        var note = el("p", "review-note", t("review"));
        note.lang = uiLang;
        item.appendChild(note);
      }
      if (typeof c.confidence === "number") {
        var conf = el("p", "confidence", t("confidence") + ": " + pct(c.confidence));
        conf.lang = uiLang;
        item.appendChild(conf);
      }
      item.appendChild(copyButton(c.text));
      ul.appendChild(item);
    });
    li.appendChild(ul);
    if (data.objects) { li.appendChild(labels("objects", t("objects"), data.objects)); }
    if (data.tags) { li.appendChild(labels("tags", t("tags"), data.tags)); }
    if (data.text) { li.appendChild(textLines(data.text)); }
    drawBoxes(li, data);
    drawLines(li, data);
    var dl = el("dl", "meta");
    var add = function (k, v) { if (v) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); } };
    if (data.image) { add(t("size"), data.image.width + " × " + data.image.height + " (" + data.image.format + ")"); }
    if (data.metadata) { add(t("camera"), data.metadata.camera); add(t("date"), data.metadata.date_taken); }
    li.appendChild(dl);
    if (data.metadata && data.metadata.gps === "present") { li.appendChild(el("p", "notice", t("gps"))); }
  }

  function upload(file) {
    section.hidden = false;
    var li = el("li", "result");
    li.appendChild(el("p", "filename", file.name || "image"));
    if (window.URL && URL.createObjectURL) {
      var wrap = el("div", "preview");
      var img = el("img");
      img.alt = t("preview") + (file.name ? ": " + file.name : "");
      img.src = URL.createObjectURL(file);
      img.addEventListener("load", function () { URL.revokeObjectURL(img.src); });
      wrap.appendChild(img);
      li.appendChild(wrap);
    }
    var status = el("p", "status", t("uploading"));
    status.setAttribute("role", "status");
    var bar = el("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", t("uploading"));
    li.appendChild(status); li.appendChild(bar);
    list.appendChild(li);

    var fd = new FormData();
    fd.append("image", file, file.name || "image");
    ["lang", "style", "alternatives", "gender_neutral", "features"].forEach(function (n) {
      var v = option(n); if (v !== null && v !== "") { fd.append(n, v); }
    });
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/captions");
    xhr.setRequestHeader("Accept", "application/json");
    // Signed in: the session's CSRF token, so the caption counts for the account (history).
    var csrfMeta = document.querySelector('meta[name="csrf-token"]');
    if (csrfMeta) { xhr.setRequestHeader("X-CSRF-Token", csrfMeta.getAttribute("content")); }
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
      if (e.loaded === e.total) { status.textContent = t("processing"); bar.removeAttribute("value"); }
    });
    xhr.addEventListener("load", function () {
      li.removeChild(bar);
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      if (xhr.status === 200 && data) {
        li.removeChild(status);
        showResult(li, data);
      } else {
        li.className = "result failed";
        status.className = "error-text";
        status.setAttribute("role", "alert");
        status.textContent = t("error") + ": " + ((data && data.detail) || xhr.status);
      }
    });
    xhr.addEventListener("error", function () {
      if (bar.parentNode) { li.removeChild(bar); }
      status.className = "error-text";
      status.textContent = t("error");
    });
    xhr.send(fd);
  }

  function handle(files) {
    for (var i = 0; i < files.length; i++) {
      if (!files[i].type || files[i].type.indexOf("image/") === 0) { upload(files[i]); }
    }
  }

  form.addEventListener("submit", function (e) {
    if (!input.files || input.files.length === 0) { return; }
    e.preventDefault();
    handle(input.files);
  });
  ["dragenter", "dragover"].forEach(function (n) {
    zone.addEventListener(n, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (n) {
    zone.addEventListener(n, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files) { handle(e.dataTransfer.files); }
  });
  document.addEventListener("paste", function (e) {
    if (e.clipboardData && e.clipboardData.files && e.clipboardData.files.length) { handle(e.clipboardData.files); }
  });
})();

// Batch jobs: upload once, then poll the job and fill the progress bar; download links at the end.
(function () {
  "use strict";
  var form = document.getElementById("batch-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var t = function (k) { return form.getAttribute("data-t-" + k) || ""; };
  var box = document.getElementById("batch-status");
  var text = document.getElementById("batch-text");
  var bar = document.getElementById("batch-progress");
  var links = document.getElementById("batch-links");
  var langSel = document.getElementById("lang");

  function poll(id) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", "/api/v1/jobs/" + encodeURIComponent(id));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.addEventListener("load", function () {
      var s = null;
      try { s = JSON.parse(xhr.responseText); } catch (e) { s = null; }
      if (xhr.status !== 200 || !s) { text.textContent = t("error"); return; }
      var finished = s.done + s.failed;
      bar.max = Math.max(1, s.total); bar.value = finished;
      var line = t("progress") + ": " + finished + " / " + s.total;
      if (s.failed) { line += " (" + s.failed + " " + t("failed") + ")"; }
      if (s.status === "done") {
        text.textContent = t("done") + " — " + line;
        var base = "/api/v1/jobs/" + encodeURIComponent(id) + "/results?format=";
        document.getElementById("batch-jsonl").href = base + "jsonl";
        document.getElementById("batch-csv").href = base + "csv";
        document.getElementById("batch-zip").href = base + "zip";
        links.hidden = false;
      } else {
        text.textContent = line;
        setTimeout(function () { poll(id); }, 500);
      }
    });
    xhr.addEventListener("error", function () { text.textContent = t("error"); });
    xhr.send();
  }

  form.addEventListener("submit", function (e) {
    var files = document.getElementById("batch-files").files;
    if (!files || files.length === 0) { return; }
    e.preventDefault();
    var fd = new FormData();
    for (var i = 0; i < files.length; i++) { fd.append("image", files[i], files[i].name); }
    if (langSel && langSel.value) { fd.append("lang", langSel.value); }
    box.hidden = false; links.hidden = true;
    bar.removeAttribute("value");
    text.textContent = t("sending");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/jobs");
    xhr.setRequestHeader("Accept", "application/json");
    // Signed in: the job is the account's (history, counters), as for single photos.
    var jobCsrf = document.querySelector('meta[name="csrf-token"]');
    if (jobCsrf) { xhr.setRequestHeader("X-CSRF-Token", jobCsrf.getAttribute("content")); }
    xhr.addEventListener("load", function () {
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
      if (xhr.status === 202 && data && data.id) {
        bar.value = 0;
        poll(data.id);
      } else {
        text.textContent = t("error") + ": " + ((data && data.detail) || xhr.status);
      }
    });
    xhr.addEventListener("error", function () { text.textContent = t("error"); });
    xhr.send(fd);
  });
})();
