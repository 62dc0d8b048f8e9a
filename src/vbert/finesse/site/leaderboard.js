/* Finesse leaderboard: sortable table, quality-vs-latency scatter, per-length curves and the
   Anatomy Laboratory, all from the data embedded in the page (no network). */
"use strict";

(function () {
  const F = window.Finesse;
  const el = F.el;
  const DATA = JSON.parse(document.getElementById("finesse-data").textContent);
  const models = DATA.models;
  const byId = new Map(models.map((m) => [m.id, m]));
  const styleOf = new Map(models.map((m, i) => [m.id, F.seriesStyle(i)]));
  const flagged = (m) => m.hash.status === "invalid";
  const app = (window.FinesseLeaderboard = { data: DATA });

  const HASH_TEXT = { valid: "✓ valid", signed: "✓ signed", invalid: "⚠ does not verify" };
  const LATENCY = {
    full: { key: "latency_full_ms", label: "Full time per document (embed all chunks + merge), ms, log scale" },
    merge_only: { key: "latency_merge_ms", label: "Merging only (chunk vectors cached), ms, log scale" },
  };

  // ---------------------------------------------------------------- table
  const COLUMNS = [
    { key: "rank", label: "#", type: "num", get: (m) => m.rank, help: "Rank among results whose hash verifies" },
    { key: "label", label: "Model", type: "text", get: (m) => m.label },
    { key: "mode", label: "Mode", type: "text", get: (m) => m.mode },
    { key: "version", label: "Formula version", type: "text", get: (m) => m.score_version + " · " + m.formula },
    { key: "chunk_space", label: "Chunk space", type: "text", get: (m) => m.chunk_space },
    { key: "overall", label: "Finesse", type: "num", get: (m) => m.overall, digits: 2 },
    ...DATA.bands.map((b) => ({
      key: "band:" + b.key,
      label: "L " + b.key,
      type: "num",
      get: (m) => (m.bands[b.key] ? m.bands[b.key].score : null),
      digits: 2,
      band: b.key,
    })),
    { key: "latency_full_ms", label: "Full ms", type: "num", get: (m) => m.latency_full_ms, ms: true, help: "Median full time per document" },
    { key: "latency_merge_ms", label: "Merge ms", type: "num", get: (m) => m.latency_merge_ms, ms: true, help: "Median merging-only time per document" },
    { key: "lengths", label: "Lengths", type: "num", left: true, get: (m) => m.lengths_evaluated.length, help: "Lengths evaluated (number of chunks)" },
    { key: "hash", label: "Hash", type: "text", get: (m) => m.hash.status },
  ];
  const sort = { key: "overall", dir: -1 };
  const table = document.getElementById("board");
  const showFlagged = document.getElementById("show-flagged");

  function compare(a, b, column) {
    const va = column.get(a);
    const vb = column.get(b);
    if (va === null || va === undefined) return vb === null || vb === undefined ? 0 : 1; // missing last
    if (vb === null || vb === undefined) return -1;
    const order = column.type === "num" ? va - vb : String(va).localeCompare(String(vb));
    return order * sort.dir;
  }

  function cellFor(m, column) {
    const value = column.get(m);
    if (column.key === "label") {
      const name = el("span", { class: "model-name", text: m.label, title: m.source });
      const badge = flagged(m)
        ? el("span", { class: "flag", role: "img", "aria-label": "flagged: content hash does not verify", title: m.hash.detail.join("\n"), text: "⚠ unverified" })
        : null;
      return el("th", { scope: "row" }, [name, badge]);
    }
    if (column.key === "hash") {
      return el("td", { class: "hash " + value, title: m.hash.detail.join("\n") || value, text: HASH_TEXT[value] || value });
    }
    if (column.key === "lengths") {
      const skipped = Object.keys(m.lengths_not_evaluated);
      const title = skipped.map((l) => "L=" + l + ": " + m.lengths_not_evaluated[l]).join("\n");
      return el("td", { class: "lengths", title: title || null }, [
        F.ranges(m.lengths_evaluated),
        skipped.length ? el("small", { text: skipped.length + " not evaluated" }) : null,
      ]);
    }
    if (column.band) {
      const band = m.bands[column.band];
      if (!band) return el("td", { class: "num missing", text: "–", title: "no length of this band was run" });
      const partial = band.missing.length > 0;
      const title = (partial ? "lengths " + F.ranges(band.missing) + " not evaluated; mean of " + F.ranges(band.evaluated) : "lengths " + F.ranges(band.evaluated));
      return el("td", { class: "num" + (partial ? " partial" : ""), title, text: band.score === null ? "–" : F.fmt(band.score, 2) + (partial ? "*" : "") });
    }
    if (column.key === "overall") {
      const partial = Object.keys(m.lengths_not_evaluated).length > 0;
      return el("td", {
        class: "num score",
        title: "TD " + F.fmtSigned(m.td, 4) + " · BU " + F.fmtSigned(m.bu, 4) + (partial ? " · mean over evaluated lengths only" : ""),
        text: F.fmt(value, 2) + (partial ? "*" : ""),
      });
    }
    if (column.ms) return el("td", { class: "num", text: F.fmtMs(value), title: m.machine });
    if (column.key === "version") {
      return el("td", { class: "version" }, [m.score_version, el("small", { text: m.formula })]);
    }
    if (column.key === "rank") return el("td", { class: "num rank", text: value === null ? "–" : String(value) });
    return el("td", { text: value === null || value === undefined ? "–" : String(value) });
  }

  function renderTable() {
    const column = COLUMNS.find((c) => c.key === sort.key);
    // Flagged results stay below the verified ones whatever the sort: shown, never mixed in.
    const rows = models
      .filter((m) => showFlagged.checked || !flagged(m))
      .sort((a, b) => flagged(a) - flagged(b) || compare(a, b, column));
    const head = el(
      "tr",
      {},
      COLUMNS.map((c) => {
        const active = c.key === sort.key;
        const button = el("button", { type: "button", class: "sort", "data-key": c.key, title: c.help || null }, [
          c.label,
          el("span", { class: "arrow", "aria-hidden": "true", text: active ? (sort.dir < 0 ? " ▼" : " ▲") : "" }),
        ]);
        button.addEventListener("click", () => {
          sort.dir = sort.key === c.key ? -sort.dir : c.type === "num" && c.key !== "rank" && !c.ms ? -1 : 1;
          sort.key = c.key;
          renderTable();
          table.querySelector('button[data-key="' + c.key + '"]').focus();
        });
        return el("th", { scope: "col", class: (c.type === "num" && !c.left ? "num" : "") + (c.band ? " nowrap" : ""), "aria-sort": active ? (sort.dir < 0 ? "descending" : "ascending") : "none" }, [button]);
      })
    );
    const body = el(
      "tbody",
      {},
      rows.map((m) => el("tr", { "data-id": m.id, class: flagged(m) ? "flagged" : null }, COLUMNS.map((c) => cellFor(m, c))))
    );
    table.replaceChildren(el("caption", { class: "sr-only", text: "Finesse results, sortable by any column" }), el("thead", {}, [head]), body);
  }
  showFlagged.addEventListener("change", () => {
    renderTable();
    renderScatter();
  });

  // ---------------------------------------------------------------- scatter
  const scatterBox = document.getElementById("scatter");
  const tooltip = el("div", { class: "tooltip", role: "status", hidden: true });
  let scatter = null;
  app.latency = "full";

  function scatterPoints() {
    const key = LATENCY[app.latency].key;
    return models
      .filter((m) => (showFlagged.checked || !flagged(m)) && m.overall !== null && m[key] > 0)
      .map((m) => ({ m, x: m[key], y: m.overall }))
      .sort((a, b) => a.x - b.x);
  }

  function renderScatter() {
    if (scatter) scatter.destroy();
    const points = scatterPoints();
    const omitted = models.filter((m) => !(m[LATENCY[app.latency].key] > 0)).map((m) => m.label);
    document.getElementById("scatter-note").textContent = omitted.length ? "Not plotted (no latency > 0): " + omitted.join(", ") : "";
    scatterBox.dataset.latency = app.latency;
    const xs = points.map((p) => p.x);
    const series = [{}].concat(
      points.map((p, i) => {
        const s = styleOf.get(p.m.id);
        const hollow = flagged(p.m);
        return {
          label: p.m.label,
          stroke: s.color,
          fill: s.color,
          paths: () => null,
          points: { show: true, size: 13, width: hollow ? 2.5 : 1, fill: hollow ? "#fff" : s.color, stroke: s.color },
          _index: i,
        };
      })
    );
    const data = [xs].concat(points.map((p, i) => xs.map((_, j) => (j === i ? p.y : null))));
    scatter = new uPlot(
      {
        width: Math.min(900, scatterBox.clientWidth || 900),
        height: 420,
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { show: false }, x: false, y: false },
        scales: { x: { time: false, distr: 3, log: 10 }, y: { auto: true } },
        axes: [
          { label: LATENCY[app.latency].label, labelSize: 22, size: 48 },
          { label: "Finesse (higher is better)", labelSize: 22, size: 56 },
        ],
        series,
        hooks: {
          draw: [
            (u) => {
              const ctx = u.ctx;
              const dpr = window.devicePixelRatio || 1;
              ctx.save();
              ctx.font = 12 * dpr + "px sans-serif";
              ctx.fillStyle = "#222";
              if (points.length <= 24) {
                for (const p of points) {
                  ctx.fillText(p.m.label + (flagged(p.m) ? " ⚠" : ""), u.valToPos(p.x, "x", true) + 9 * dpr, u.valToPos(p.y, "y", true) - 7 * dpr);
                }
              }
              ctx.restore();
            },
          ],
        },
      },
      data,
      scatterBox
    );
    scatter.over.appendChild(tooltip);
    scatter.over.addEventListener("mousemove", (e) => {
      const rect = scatter.over.getBoundingClientRect();
      const mx = e.clientX - rect.left;
      const my = e.clientY - rect.top;
      let best = null;
      let bestDist = 15;
      for (const p of points) {
        const d = Math.hypot(scatter.valToPos(p.x, "x") - mx, scatter.valToPos(p.y, "y") - my);
        if (d < bestDist) { best = p; bestDist = d; }
      }
      showTooltip(best, best ? scatter.valToPos(best.x, "x") : 0, best ? scatter.valToPos(best.y, "y") : 0);
    });
    scatter.over.addEventListener("mouseleave", () => showTooltip(null));
    scatter.over.addEventListener("click", () => {
      const id = tooltip.hidden ? null : tooltip.dataset.id;
      if (!id) return;
      const box = document.querySelector('#curve-models input[value="' + id + '"]');
      if (box) { box.checked = !box.checked; renderCurves(); }
    });
    app.scatter = scatter;
    app.scatterPoints = points.map((p) => ({ id: p.m.id, x: p.x, y: p.y }));
  }

  function showTooltip(p, left, top) {
    if (!p) { tooltip.hidden = true; return; }
    const m = p.m;
    tooltip.replaceChildren(
      el("strong", { text: m.label }),
      el("div", { text: "Finesse " + F.fmt(m.overall, 2) + " (TD " + F.fmtSigned(m.td, 4) + ", BU " + F.fmtSigned(m.bu, 4) + ")" }),
      el("div", { text: "full " + F.fmtMs(m.latency_full_ms) + " · merge only " + F.fmtMs(m.latency_merge_ms) }),
      el("div", { text: m.mode + " · " + m.score_version + " · " + m.formula + " · chunks: " + m.chunk_space }),
      el("div", { text: "lengths " + F.ranges(m.lengths_evaluated) + " · hash: " + HASH_TEXT[m.hash.status] }),
      el("div", { class: "muted", text: m.machine })
    );
    tooltip.dataset.id = m.id;
    tooltip.hidden = false;
    tooltip.style.left = Math.min(left + 12, scatter.over.clientWidth - 260) + "px";
    tooltip.style.top = Math.max(0, top - 20) + "px";
  }

  for (const radio of document.querySelectorAll('input[name="latency"]')) {
    radio.addEventListener("change", () => {
      app.latency = radio.value;
      renderScatter();
    });
  }

  // ---------------------------------------------------------------- per-length curves
  const curveBox = document.getElementById("curves");
  const picker = document.getElementById("curve-models");
  let curves = null;

  function buildPicker() {
    const ranked = [...models].sort((a, b) => (a.rank ?? 1e9) - (b.rank ?? 1e9));
    const initial = new Set(ranked.slice(0, 5).map((m) => m.id));
    picker.replaceChildren(
      el("legend", { text: "Models shown" }),
      ...models.map((m) => {
        const s = styleOf.get(m.id);
        return el("label", { class: "pick" }, [
          el("input", { type: "checkbox", value: m.id, checked: initial.has(m.id), onchange: renderCurves }),
          el("span", { class: "line-swatch" + (s.dash || flagged(m) ? " dashed" : ""), style: { borderColor: s.color }, "aria-hidden": "true" }),
          m.label + (flagged(m) ? " ⚠ unverified" : ""),
        ]);
      })
    );
  }

  const curveValues = document.getElementById("curve-values");

  function showCurveValues(u, chosen) {
    const i = u.cursor.idx;
    if (i === null || i === undefined) {
      curveValues.textContent = "Hover the chart to read the values at one length.";
      return;
    }
    const parts = chosen.map((m, k) => m.label + " " + F.fmt(u.data[k + 1][i], 2));
    curveValues.textContent = "L = " + u.data[0][i] + ": " + parts.join(" · ");
  }

  function renderCurves() {
    if (curves) curves.destroy();
    const chosen = [...picker.querySelectorAll("input:checked")].map((i) => byId.get(i.value));
    const lengths = [...new Set(chosen.flatMap((m) => m.per_length.map((p) => p[0])))].sort((a, b) => a - b);
    const series = [{ label: "L" }].concat(
      chosen.map((m) => {
        const s = styleOf.get(m.id);
        return { label: m.label, stroke: s.color, width: 2, dash: s.dash || (flagged(m) ? [4, 4] : undefined), points: { show: true, size: 6, fill: s.color }, spanGaps: false };
      })
    );
    const data = [lengths].concat(
      chosen.map((m) => {
        const at = new Map(m.per_length.map((p) => [p[0], p[1]]));
        return lengths.map((l) => (at.has(l) ? at.get(l) : null));
      })
    );
    curveBox.dataset.models = chosen.map((m) => m.id).join(",");
    curves = new uPlot(
      {
        width: Math.min(900, curveBox.clientWidth || 900),
        height: 340,
        scales: { x: { time: false } },
        axes: [
          { label: "number of chunks L", labelSize: 22, size: 46, incrs: [1, 2, 4, 8, 16, 32], values: (u, splits) => splits.map(String) },
          { label: "mean Finesse at L", labelSize: 22, size: 56 },
        ],
        series,
        legend: { show: false },
        hooks: { setCursor: [(u) => showCurveValues(u, chosen)] },
      },
      data,
      curveBox
    );
    app.curves = curves;
  }

  // ---------------------------------------------------------------- anatomy
  const withAnatomy = models.filter((m) => m.anatomy);
  const pickModel = document.getElementById("anatomy-model");
  const pickLength = document.getElementById("anatomy-length");
  const pickSample = document.getElementById("anatomy-sample");
  const anatomyStatus = document.getElementById("anatomy-status");
  const anatomyRoot = document.getElementById("anatomy-view");
  let anatomy = null;
  window.FinesseAnatomyData = window.FinesseAnatomyData || {};

  function decodeMatrix(b64, n, scale) {
    const bin = atob(b64);
    const view = new DataView(new ArrayBuffer(bin.length));
    for (let i = 0; i < bin.length; i++) view.setUint8(i, bin.charCodeAt(i));
    const rows = [];
    for (let r = 0; r < n; r++) {
      const row = new Array(n);
      for (let c = 0; c < n; c++) row[c] = view.getInt16(2 * (r * n + c), true) / scale;
      rows.push(row);
    }
    return rows;
  }

  function loadAnatomy(model) {
    return new Promise((resolve, reject) => {
      if (window.FinesseAnatomyData[model.id]) return resolve(window.FinesseAnatomyData[model.id]);
      const script = el("script", { src: model.anatomy });
      script.onload = () =>
        window.FinesseAnatomyData[model.id] ? resolve(window.FinesseAnatomyData[model.id]) : reject(new Error(model.anatomy + " holds no data"));
      script.onerror = () => reject(new Error("cannot read " + model.anatomy + "; keep the anatomy/ folder next to index.html"));
      document.head.appendChild(script);
    });
  }

  function options(select, items, selected) {
    select.replaceChildren(...items.map(([value, text]) => el("option", { value, text, selected: String(value) === String(selected) })));
  }

  async function chooseModel() {
    const model = byId.get(pickModel.value);
    anatomyStatus.textContent = "Loading " + model.label + "…";
    try {
      app.anatomyData = await loadAnatomy(model);
    } catch (err) {
      anatomyStatus.textContent = err.message;
      return;
    }
    anatomyStatus.textContent = flagged(model) ? "⚠ The results of this model do not verify; the matrices come from its raw files." : "";
    const lengths = Object.keys(app.anatomyData.lengths).map(Number).sort((a, b) => a - b);
    const keep = lengths.includes(Number(pickLength.value)) ? pickLength.value : lengths[0];
    options(pickLength, lengths.map((l) => [l, "L = " + l]), keep);
    chooseLength();
  }

  function chooseLength(which) {
    const entry = app.anatomyData.lengths[pickLength.value];
    const samples = entry.samples;
    let index = samples[0].index;
    if (which === "best") index = entry.best;
    else if (which === "worst") index = entry.worst;
    else if (samples.some((s) => String(s.index) === pickSample.value)) index = Number(pickSample.value);
    options(
      pickSample,
      samples.map((s) => [s.index, "#" + s.index + " · score " + F.fmt(s.score, 2) + (s.index === entry.best ? " (best)" : s.index === entry.worst ? " (worst)" : "")]),
      index
    );
    chooseSample();
  }

  function chooseSample() {
    const data = app.anatomyData;
    const entry = data.lengths[pickLength.value];
    const raw = entry.samples.find((s) => String(s.index) === pickSample.value);
    const n = Number(pickLength.value);
    const sample = Object.assign({}, raw, { matrix: decodeMatrix(raw.matrix, n, data.scale) });
    if (!anatomy) anatomy = new F.Anatomy(anatomyRoot);
    anatomy.show(sample, {
      formula: data.formula,
      scoreVersion: data.score_version,
      label: byId.get(pickModel.value).label,
      samplesTotal: entry.samples_total,
    });
    app.anatomy = anatomy;
  }

  function setupAnatomy() {
    if (!withAnatomy.length) {
      anatomyStatus.textContent =
        "No raw files were given, so there is nothing to dissect. Rebuild with `finesse leaderboard RESULTS... --raw RAW_DIR`.";
      document.getElementById("anatomy-controls").hidden = true;
      return;
    }
    options(pickModel, withAnatomy.map((m) => [m.id, m.label + (flagged(m) ? " ⚠ unverified" : "")]), withAnatomy[0].id);
    pickModel.addEventListener("change", chooseModel);
    pickLength.addEventListener("change", () => chooseLength());
    pickSample.addEventListener("change", chooseSample);
    document.getElementById("anatomy-best").addEventListener("click", () => chooseLength("best"));
    document.getElementById("anatomy-worst").addEventListener("click", () => chooseLength("worst"));
    app.anatomyReady = chooseModel();
  }

  // ---------------------------------------------------------------- SRS (separate metric, separate table)
  function renderSrs() {
    const section = document.getElementById("srs");
    section.hidden = DATA.srs.length === 0;
    if (!DATA.srs.length) return;
    const head = [["Model"], ["Formula"], ["SRS", "num"], ["Position bias index", "num"], ["Lengths"], ["Hash"]];
    const rows = DATA.srs.map((m) =>
      el("tr", { class: flagged(m) ? "flagged" : null }, [
        el("th", { scope: "row" }, [m.label, flagged(m) ? el("span", { class: "flag", text: "⚠ unverified", title: m.hash.detail.join("\n") }) : null]),
        el("td", { text: m.formula }),
        el("td", { class: "num", text: F.fmt(m.overall, 2) }),
        el("td", { class: "num", text: F.fmt(m.pbi, 3) }),
        el("td", { text: F.ranges(m.lengths_evaluated) }),
        el("td", { class: "hash " + m.hash.status, text: HASH_TEXT[m.hash.status] }),
      ])
    );
    document.getElementById("srs-board").replaceChildren(
      el("thead", {}, [el("tr", {}, head.map(([h, cls]) => el("th", { scope: "col", class: "plain " + (cls || ""), text: h })))]),
      el("tbody", {}, rows)
    );
  }

  // ---------------------------------------------------------------- boot
  const warnings = document.getElementById("warnings");
  for (const w of DATA.warnings) warnings.appendChild(el("li", { text: w }));
  warnings.hidden = DATA.warnings.length === 0;
  document.getElementById("flag-toolbar").hidden = !models.some(flagged);
  document.getElementById("generated").textContent =
    (models.length + DATA.srs.length === 1 ? "1 result" : models.length + DATA.srs.length + " results") + " · built " + DATA.generated + " with vbert " + DATA.vbert_version;
  renderTable();
  renderSrs();
  buildPicker();
  let chartsDrawn = false;
  let anatomyStarted = false;
  F.setupTabs(document.getElementById("views"), (view) => {
    // Charts measure their container, so they are drawn when their view is first shown.
    if (view === "charts" && !chartsDrawn) {
      chartsDrawn = true;
      renderScatter();
      renderCurves();
    }
    if (view === "anatomy" && !anatomyStarted) {
      anatomyStarted = true;
      setupAnatomy();
    }
  });
  app.renderTable = renderTable;
})();
