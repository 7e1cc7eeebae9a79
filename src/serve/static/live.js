// A running build's log, as it is written: server-sent events carry the new text
// (JSON strings); each line is added as text (never as HTML) with the same classes the
// server gives a finished log. When the build ends, the page reloads as a finished build.
(function () {
  "use strict";
  var pre = document.getElementById("log");
  var state = document.getElementById("live-state");
  if (!pre || !pre.dataset.live) { return; }
  var partial = null;
  function classOf(line) {
    if (line.indexOf("[Container] ") !== 0) { return "output"; }
    if (/Command did not exit successfully|State: (FAILED|FAULT|TIMED_OUT)|status code: COMMAND_EXECUTION_ERROR/.test(line)) { return "failed"; }
    return "container";
  }
  function add(text) {
    var lines = text.split("\n");
    lines.forEach(function (line, i) {
      var last = i === lines.length - 1;
      if (partial) {
        partial.textContent += line;
      } else if (line !== "" || !last) {
        partial = document.createElement("span");
        partial.textContent = line;
        pre.appendChild(partial);
      }
      if (!last && partial) {
        partial.className = classOf(partial.textContent);
        pre.appendChild(document.createTextNode("\n"));
        partial = null;
      }
    });
    pre.scrollTop = pre.scrollHeight;
  }
  var source = new EventSource(pre.dataset.live);
  source.addEventListener("log", function (event) { add(JSON.parse(event.data)); });
  source.addEventListener("end", function (event) {
    source.close();
    var status = JSON.parse(event.data);
    if (state) { state.textContent = "build ended: " + status; }
    var badge = document.getElementById("build-status");
    if (badge) { badge.textContent = status; badge.className = "status s-" + status; }
    setTimeout(function () { window.location.reload(); }, 1500);
  });
  source.addEventListener("failure", function (event) {
    if (state) { state.textContent = JSON.parse(event.data); }
  });
}());
