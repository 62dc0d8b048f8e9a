/* `vbert lab` page: sends the pasted text to /api/analyze and shows the returned sample with
   the same Anatomy view as the static leaderboard. Input errors come from the server, so the
   page and the API say the same thing. */
"use strict";

(function () {
  const F = window.Finesse;
  const el = F.el;
  const OPTIONS = JSON.parse(document.getElementById("finesse-data").textContent);
  const form = document.getElementById("lab-form");
  const errorBox = document.getElementById("lab-error");
  const status = document.getElementById("lab-status");
  const result = document.getElementById("lab-result");
  const runButton = document.getElementById("lab-run");
  const text = document.getElementById("lab-text");
  const tokens = document.getElementById("lab-tokens");
  const selects = {
    embedder: [document.getElementById("lab-embedder"), OPTIONS.embedders],
    merger: [document.getElementById("lab-merger"), OPTIONS.mergers],
    chunk_space: [document.getElementById("lab-chunk-space"), OPTIONS.chunk_spaces],
    formula: [document.getElementById("lab-formula"), OPTIONS.formulas],
    score_version: [document.getElementById("lab-score-version"), OPTIONS.score_versions],
  };
  const app = (window.FinesseLab = { options: OPTIONS });
  let anatomy = null;

  for (const [key, [select, values]] of Object.entries(selects)) {
    select.replaceChildren(...values.map((v) => el("option", { value: v, text: v, selected: v === OPTIONS.defaults[key] })));
  }
  tokens.value = OPTIONS.defaults.chunk_tokens;
  tokens.min = OPTIONS.limits.min_chunk_tokens;
  document.getElementById("text-help").textContent =
    "(" + OPTIONS.limits.min_chunks + " to " + OPTIONS.limits.max_chunks + " chunks, at most " +
    OPTIONS.limits.max_text_chars.toLocaleString("en") + " characters)";

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
    text.setAttribute("aria-invalid", message ? "true" : "false");
  }

  function request() {
    const body = {};
    for (const [key, [select]] of Object.entries(selects)) body[key] = select.value;
    if (form.elements.cut.value === "paragraphs") {
      body.chunks = text.value.split(/\n\s*\n/);
    } else {
      body.text = text.value;
      body.chunk_tokens = Number(tokens.value);
    }
    return body;
  }

  async function analyse(event) {
    event.preventDefault();
    showError("");
    runButton.disabled = true;
    status.textContent = "Computing…";
    try {
      const response = await fetch("/api/analyze", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request()),
      });
      const payload = await response.json();
      if (!response.ok) {
        showError(payload.error || "the lab answered " + response.status);
        status.textContent = "";
        if (payload.field === "text") text.focus();
        return;
      }
      render(payload);
    } catch (err) {
      showError("The lab server cannot be reached (" + err.message + "); is `vbert lab` still running?");
      status.textContent = "";
    } finally {
      runButton.disabled = false;
    }
  }

  function render(payload) {
    app.last = payload;
    status.textContent =
      payload.chunks.length + " chunks · " + payload.embedder.name + " + " + payload.merger.name +
      " · embedding " + F.fmt(payload.timings_ms.embed, 1) + " ms, all prefix merges " + F.fmt(payload.timings_ms.merge_prefixes, 1) + " ms";
    result.hidden = false;
    if (!anatomy) anatomy = new F.Anatomy(document.getElementById("lab-anatomy"));
    anatomy.show(payload, {
      formula: payload.formula,
      scoreVersion: payload.score_version,
      label: payload.merger.name + " on " + payload.embedder.name + " (chunk space " + payload.chunk_space + ")",
    });
    app.anatomy = anatomy;
    document.getElementById("lab-chunks").replaceChildren(
      ...payload.chunks.map((c) =>
        el("li", {}, [el("code", { text: "c" + c.index }), " (" + c.tokens + " tokens) ", c.text.length > 160 ? c.text.slice(0, 160) + "…" : c.text])
      )
    );
  }

  form.addEventListener("submit", analyse);
})();
