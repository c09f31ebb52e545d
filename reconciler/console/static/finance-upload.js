// Drag and drop onto the statement upload form (reconciler/console/finance_recon.py).
// Without this script the form's file input works as any other; with it, a file
// dropped on the zone fills that input. Nothing is sent until the form is submitted.
(function () {
  "use strict";
  var zone = document.getElementById("drop-zone");
  var input = document.getElementById("statement");
  if (!zone || !input) { return; }
  var max = parseInt(zone.getAttribute("data-max-bytes") || "0", 10);
  var note = document.getElementById("drop-note");
  function show(text) { if (note) { note.textContent = text; } }
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    var dropped = event.dataTransfer && event.dataTransfer.files;
    if (!dropped || dropped.length !== 1) {
      show(zone.getAttribute("data-one-file") || "");
      return;
    }
    if (max && dropped[0].size > max) {
      show(zone.getAttribute("data-too-large") || "");
      return;
    }
    input.files = dropped;
    show(dropped[0].name);
  });
  input.closest("form").addEventListener("submit", function () {
    var button = this.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    show(zone.getAttribute("data-sending") || "");
  });
})();
