// The sample browser. Document text, URLs and details are untrusted page content: they only ever reach the page
// through textContent, never as markup.
(function () {
  "use strict";
  var SNIPPET_CHARS = 400;
  var data = JSON.parse(document.getElementById("samples-data").textContent);
  var stageSelect = document.getElementById("sample-stage");
  var reasonSelect = document.getElementById("sample-reason");
  var summary = document.getElementById("sample-summary");
  var list = document.getElementById("sample-list");
  var KEPT = "";  // the kept documents' option: stage names are never empty

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function option(value, label) {
    var node = element("option", "", label);
    node.value = value;
    return node;
  }

  function stageByName(name) {
    for (var i = 0; i < data.stages.length; i++) if (data.stages[i].name === name) return data.stages[i];
    return null;
  }

  function renderDoc(doc, stage, reason, kept) {
    var card = element("article", kept ? "sample kept" : "sample");
    card.dataset.stage = stage;
    card.dataset.reason = reason;
    card.appendChild(element("div", "url", doc.url || "(no URL)"));
    if (doc.detail) card.appendChild(element("div", "detail", doc.detail));
    if (doc.headers) card.appendChild(element("div", "headers", doc.headers));
    var meta = element("div", "meta");
    meta.appendChild(element("span", "", kept ? "kept" : stage + " · " + reason));
    if (doc.language) meta.appendChild(element("span", "", "language " + doc.language +
        (doc.score === null ? "" : " (" + doc.score + ")")));
    meta.appendChild(element("span", "", doc.chars.toLocaleString() + " characters"));
    if (doc.source) meta.appendChild(element("span", "", doc.source));
    if (doc.id) meta.appendChild(element("span", "", doc.id));
    card.appendChild(meta);
    // The snippet skips blank lines and indentation; the full text below keeps them.
    var text = doc.text.split("\n").map(function (line) { return line.trim(); }).filter(Boolean).join("\n");
    var snippet = doc.preview ? "text preview: " + doc.preview :
        text.length > SNIPPET_CHARS ? text.slice(0, SNIPPET_CHARS) + " …" : text;
    card.appendChild(element("p", "snippet", snippet));
    var more = element("details");
    var cut = doc.chars - doc.text.length;
    more.appendChild(element("summary", "", (doc.preview ? "full HTML" : "full text") + (cut > 0 ? " (first " +
        doc.text.length.toLocaleString() + " of " + doc.chars.toLocaleString() + " characters)" : "") +
        (doc.stored_truncated ? ", stored truncated by mdr run" : "")));
    more.appendChild(element("pre", "", doc.text + (cut > 0 ? "\n[… " + cut.toLocaleString() +
        " more characters: mdr inspect shows them all]" : "")));
    card.appendChild(more);
    return card;
  }

  function show() {
    var stageName = stageSelect.value;
    var docs, total, label;
    list.replaceChildren();
    if (stageName === KEPT) {
      docs = data.kept.docs;
      total = data.kept.count;
      label = "kept documents";
      docs.forEach(function (doc) { list.appendChild(renderDoc(doc, "kept", "kept", true)); });
    } else {
      var stage = stageByName(stageName);
      var reason = stage.reasons[Number(reasonSelect.value)];
      docs = reason.docs;
      total = reason.count;
      label = "documents dropped by " + stage.name + " for " + reason.reason +
          (stage.note ? " (" + stage.note + ")" : "");
      docs.forEach(function (doc) { list.appendChild(renderDoc(doc, stage.name, reason.reason, false)); });
    }
    list.dataset.stage = stageName === KEPT ? "kept" : stageName;
    summary.textContent = docs.length + " random of " + total.toLocaleString() + " " + label +
        " (seed " + data.seed + ")";
  }

  function fillReasons() {
    reasonSelect.replaceChildren();
    var stage = stageByName(stageSelect.value);
    if (!stage) {
      reasonSelect.appendChild(option("", "—"));
      reasonSelect.disabled = true;
    } else {
      reasonSelect.disabled = false;
      stage.reasons.forEach(function (reason, index) {
        reasonSelect.appendChild(option(String(index), reason.reason + " (" + reason.count.toLocaleString() + ")"));
      });
    }
    show();
  }

  data.stages.forEach(function (stage) {
    var dropped = stage.reasons.reduce(function (sum, reason) { return sum + reason.count; }, 0);
    stageSelect.appendChild(option(stage.name, stage.name + " (" + dropped.toLocaleString() + " dropped)"));
  });
  stageSelect.appendChild(option(KEPT, "kept documents (" + data.kept.count.toLocaleString() + ")"));
  stageSelect.addEventListener("change", fillReasons);
  reasonSelect.addEventListener("change", show);
  fillReasons();
})();
