/* Anatomy Laboratory view of one sample: the Top-Down matrix T[i][j] = cos(s_i, c_j) (syntheses ×
   chunks) and the Bottom-Up matrix B[a][k] = cos(c_a, s_k) (anchor chunks × syntheses), with the
   memory/noise split of the selected row highlighted, its quartiles marked and the gap shown.
   Used by the static leaderboard and by the live `vbert lab` page.

   A sample is {index, score, td, bu, matrix: L×L array T, td_rows: [[row, qMemory, qNoise, gap]],
   bu_rows: [[anchor, qMemory, qNoise, gap]]}; the quartiles and gaps come from the Python scorer. */
"use strict";

(function () {
  const F = window.Finesse;
  const el = F.el;
  const MEMORY_COLOR = "#0072B2";
  const NOISE_COLOR = "#D55E00";

  const VIEWS = {
    td: {
      title: "Top-Down",
      formula: "cos(s_i, c_j)",
      rowName: "synthesis",
      rowSym: "s",
      colSym: "c",
      rowsKey: "td_rows",
      explain:
        "Rows are the syntheses s_i = merge(c_0..c_i), columns the chunks c_j. Memory = chunks it was built " +
        "from (j ≤ i), noise = chunks that come later (j > i). Only rows 1..L−2 are scored.",
      isMemory: (row, col) => col <= row,
      value: (m, row, col) => m[row][col],
    },
    bu: {
      title: "Bottom-Up",
      formula: "cos(c_a, s_k)",
      rowName: "anchor chunk",
      rowSym: "c",
      colSym: "s",
      rowsKey: "bu_rows",
      explain:
        "Rows are the anchor chunks c_a, columns the syntheses s_k. Memory = syntheses that contain the " +
        "chunk (k ≥ a), noise = those before it (k < a). Anchors 1..L−1 are scored.",
      isMemory: (row, col) => col >= row,
      value: (m, row, col) => m[col][row],
    },
  };

  function quartileNames(formula) {
    return formula === "q2q2" ? ["median", "median"] : ["Q1", "Q3"];
  }

  class Panel {
    constructor(view, root) {
      this.view = view;
      this.spec = VIEWS[view];
      this.selected = null;
      const spec = this.spec;
      const headingId = "anatomy-" + view + "-heading";
      this.prev = el("button", { type: "button", class: "step", "aria-label": "Previous " + spec.rowName, text: "◀ Previous" });
      this.next = el("button", { type: "button", class: "step", "aria-label": "Next " + spec.rowName, text: "Next ▶" });
      this.position = el("span", { class: "position", "aria-hidden": "true" });
      this.matrixBox = el("div", {
        class: "matrix-box",
        tabindex: "0",
        role: "group",
        "aria-labelledby": headingId,
        "aria-describedby": "anatomy-" + view + "-help",
        "data-view": view,
      });
      this.colorbar = el("div", { class: "colorbar", "aria-hidden": "true" });
      this.strip = el("div", { class: "strip", role: "img" });
      this.readout = el("p", { class: "readout", "aria-live": "polite", "data-testid": "readout-" + view });
      this.node = el("section", { class: "anatomy-panel", "data-view": view, "aria-labelledby": headingId }, [
        el("h3", { id: headingId, text: spec.title + " matrix: " + spec.formula }),
        el("p", { class: "explain", id: "anatomy-" + view + "-help", text: spec.explain + " Use ↑/↓ (Home/End) to step through rows." }),
        el("div", { class: "stepper" }, [this.prev, this.position, this.next]),
        this.matrixBox,
        this.colorbar,
        this.readout,
        this.strip,
      ]);
      root.appendChild(this.node);
      this.prev.addEventListener("click", () => this.step(-1));
      this.next.addEventListener("click", () => this.step(1));
      this.matrixBox.addEventListener("keydown", (e) => {
        const moves = { ArrowUp: -1, ArrowDown: 1, PageUp: -5, PageDown: 5, Home: -Infinity, End: Infinity };
        if (!(e.key in moves)) return;
        e.preventDefault();
        this.step(moves[e.key]);
      });
      this.matrixBox.addEventListener("click", (e) => {
        const tr = e.target.closest("tr[data-row]");
        if (tr && this.rowInfo(Number(tr.dataset.row))) this.select(Number(tr.dataset.row));
      });
    }

    show(sample, meta) {
      this.sample = sample;
      this.meta = meta;
      const m = sample.matrix;
      this.n = m.length;
      let lo = Infinity;
      let hi = -Infinity;
      for (const row of m) for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      if (hi - lo < 1e-9) { lo -= 0.01; hi += 0.01; }
      this.domain = [lo, hi];
      this.rows = sample[this.spec.rowsKey].map((r) => ({ row: r[0], qMemory: r[1], qNoise: r[2], gap: r[3] }));
      const scored = this.rows.map((r) => r.row);
      if (!scored.includes(this.selected)) this.selected = scored.length ? scored[0] : null;
      this.buildMatrix();
      this.buildColorbar();
      this.buildStrip();
      this.select(this.selected);
    }

    rowInfo(row) {
      return this.rows.find((r) => r.row === row) || null;
    }

    step(delta) {
      const scored = this.rows.map((r) => r.row);
      if (!scored.length) return;
      let i = scored.indexOf(this.selected);
      if (delta === -Infinity) i = 0;
      else if (delta === Infinity) i = scored.length - 1;
      else i = Math.min(scored.length - 1, Math.max(0, i + delta));
      this.select(scored[i]);
    }

    cellSize() {
      return Math.max(6, Math.min(46, Math.floor(440 / this.n)));
    }

    buildMatrix() {
      const { n, spec, sample } = this;
      const size = this.cellSize();
      const withText = size >= 34;
      const labelEvery = size >= 16 ? 1 : Math.ceil(16 / size);
      const [lo, hi] = this.domain;
      const table = el("table", { class: "matrix" + (withText ? " with-text" : "") + (size < 14 ? " small" : ""), style: { "--cell": size + "px" } });
      const head = el("tr", {}, [el("th", { class: "corner", scope: "col", text: spec.rowSym + "\\" + spec.colSym })]);
      for (let c = 0; c < n; c++) {
        head.appendChild(el("th", { scope: "col", text: c % labelEvery === 0 ? spec.colSym + c : "" , title: spec.colSym + "_" + c }));
      }
      head.appendChild(el("th", { scope: "col", class: "gapcol", text: size >= 14 ? "gap" : "" }));
      this.tierRow = el("tr", { class: "tiers", "aria-hidden": "true" }, [el("th", { class: "corner", text: "tier" })]);
      for (let c = 0; c < n; c++) this.tierRow.appendChild(el("td"));
      this.tierRow.appendChild(el("td", { class: "gapcol" }));
      const body = el("tbody");
      this.trs = [];
      for (let r = 0; r < n; r++) {
        const info = this.rowInfo(r);
        const tr = el("tr", { "data-row": r, class: info ? "scored" : "unscored" }, [
          el("th", { scope: "row", text: r % labelEvery === 0 ? spec.rowSym + r : "", title: spec.rowSym + "_" + r + (info ? "" : " (not scored)") }),
        ]);
        for (let c = 0; c < n; c++) {
          const v = spec.value(sample.matrix, r, c);
          const colour = F.viridis((v - lo) / (hi - lo));
          tr.appendChild(
            el("td", {
              style: { backgroundColor: colour.css, color: colour.dark ? "#fff" : "#111" },
              title: spec.rowSym + "_" + r + " · " + spec.colSym + "_" + c + ": " + v.toFixed(4),
              text: withText ? v.toFixed(2).replace(/^0/, "") : "",
            })
          );
        }
        tr.appendChild(el("td", { class: "gapcol", text: info && size >= 14 ? F.fmtSigned(info.gap, 3) : "" }));
        body.appendChild(tr);
        this.trs.push(tr);
      }
      table.appendChild(el("thead", {}, [head, this.tierRow]));
      table.appendChild(body);
      this.matrixBox.replaceChildren(table);
    }

    buildColorbar() {
      const [lo, hi] = this.domain;
      this.marks = [el("span", { class: "mark memory" }), el("span", { class: "mark noise" })];
      this.colorbar.replaceChildren(
        el("span", { class: "cb-label", text: lo.toFixed(3) }),
        el("span", { class: "cb-bar", style: { background: F.viridisGradient() } }, this.marks),
        el("span", { class: "cb-label", text: hi.toFixed(3) })
      );
    }

    buildStrip() {
      if (this.plot) this.plot.destroy();
      const [lo, hi] = this.domain;
      const pad = (hi - lo) * 0.05;
      const panel = this;
      const names = quartileNames(this.meta.formula);
      this.plot = new uPlot(
        {
          width: Math.max(320, Math.min(520, this.matrixBox.clientWidth || 480)),
          height: 150,
          legend: { show: false },
          cursor: { show: false },
          scales: { x: { time: false, range: [lo - pad, hi + pad] }, y: { range: [-0.7, 1.7] } },
          axes: [
            { label: "cosine similarity", size: 40, labelSize: 18 },
            { splits: () => [0, 1], values: (u, splits) => splits.map((v) => (v === 1 ? "memory" : "noise")), size: 74 },
          ],
          series: [
            {},
            { label: "memory", stroke: MEMORY_COLOR, fill: MEMORY_COLOR, paths: () => null, points: { show: true, size: 9, width: 1.5, fill: MEMORY_COLOR } },
            { label: "noise", stroke: NOISE_COLOR, fill: "#fff", paths: () => null, points: { show: true, size: 9, width: 2, fill: "#fff" } },
          ],
          hooks: {
            draw: [
              (u) => {
                const info = panel.rowInfo(panel.selected);
                if (!info) return;
                const ctx = u.ctx;
                const top = u.bbox.top;
                const height = u.bbox.height;
                const xm = u.valToPos(info.qMemory, "x", true);
                const xn = u.valToPos(info.qNoise, "x", true);
                ctx.save();
                ctx.fillStyle = info.gap >= 0 ? "rgba(0,158,115,0.18)" : "rgba(120,120,120,0.25)";
                ctx.fillRect(Math.min(xm, xn), top, Math.abs(xm - xn), height);
                const dpr = window.devicePixelRatio || 1;
                ctx.lineWidth = 2 * dpr;
                ctx.font = 12 * dpr + "px sans-serif";
                ctx.textAlign = "center";
                for (const [x, colour, dash, label] of [
                  [xm, MEMORY_COLOR, [], names[0] + " memory"],
                  [xn, NOISE_COLOR, [6 * dpr, 4 * dpr], names[1] + " noise"],
                ]) {
                  ctx.strokeStyle = colour;
                  ctx.setLineDash(dash);
                  ctx.beginPath();
                  ctx.moveTo(x, top);
                  ctx.lineTo(x, top + height);
                  ctx.stroke();
                  ctx.fillStyle = colour;
                  ctx.fillText(label, x, top + (colour === MEMORY_COLOR ? 12 : 26) * dpr);
                }
                ctx.restore();
              },
            ],
          },
        },
        [[], [], []],
        this.strip
      );
    }

    select(row) {
      this.selected = row;
      const { n, spec, sample, meta } = this;
      const info = this.rowInfo(row);
      const names = quartileNames(meta.formula);
      this.trs.forEach((tr, r) => tr.classList.toggle("selected", r === row));
      for (const td of this.matrixBox.querySelectorAll("td.split")) td.classList.remove("split");
      for (let c = 0; c < n; c++) {
        const cell = this.tierRow.children[c + 1];
        const memory = row !== null && spec.isMemory(row, c);
        cell.className = row === null ? "" : memory ? "memory" : "noise";
        cell.textContent = row !== null && this.cellSize() >= 14 ? (memory ? "M" : "N") : "";
        cell.title = row === null ? "" : memory ? "memory" : "noise";
        if (row !== null && c > 0 && memory !== spec.isMemory(row, c - 1)) {
          this.trs[row].children[c + 1].classList.add("split");
          this.tierRow.children[c + 1].classList.add("split");
        }
      }
      const scored = this.rows.map((r) => r.row);
      this.prev.disabled = !info || scored.indexOf(row) <= 0;
      this.next.disabled = !info || scored.indexOf(row) >= scored.length - 1;
      this.matrixBox.dataset.selected = row === null ? "" : String(row);
      if (!info) {
        this.position.textContent = "no scored row";
        this.readout.textContent = "This sample has no scored " + spec.rowName + ".";
        this.plot.setData([[], [], []]);
        this.marks.forEach((m) => (m.hidden = true));
        return;
      }
      this.position.textContent = spec.rowSym + "_" + row + " (" + (scored.indexOf(row) + 1) + " of " + scored.length + ")";
      const memory = [];
      const noise = [];
      for (let c = 0; c < n; c++) (spec.isMemory(row, c) ? memory : noise).push(spec.value(sample.matrix, row, c));
      this.readout.textContent =
        spec.title + " " + spec.rowName + " " + spec.rowSym + "_" + row + ": memory (" + memory.length + " values) " +
        names[0] + " = " + info.qMemory.toFixed(3) + ", noise (" + noise.length + " values) " + names[1] + " = " +
        info.qNoise.toFixed(3) + ", gap = " + F.fmtSigned(info.gap, 4) + ".";
      this.strip.setAttribute(
        "aria-label",
        "Memory and noise similarities of " + spec.rowSym + "_" + row + " with " + names[0] + " and " + names[1] + " marked"
      );
      const xs = [];
      for (const v of memory) xs.push([v, 1, null]);
      for (const v of noise) xs.push([v, null, 0]);
      xs.sort((a, b) => a[0] - b[0]);
      this.plot.setData([xs.map((p) => p[0]), xs.map((p) => p[1]), xs.map((p) => p[2])]);
      const [lo, hi] = this.domain;
      this.marks[0].hidden = this.marks[1].hidden = false;
      this.marks[0].style.left = (100 * (info.qMemory - lo)) / (hi - lo) + "%";
      this.marks[1].style.left = (100 * (info.qNoise - lo)) / (hi - lo) + "%";
      this.marks[0].title = names[0] + " memory " + info.qMemory.toFixed(3);
      this.marks[1].title = names[1] + " noise " + info.qNoise.toFixed(3);
      this.marks[0].textContent = names[0];
      this.marks[1].textContent = names[1];
    }
  }

  /** Mount the two-matrix view in `root`; call .show(sample, {formula, scoreVersion, length}). */
  F.Anatomy = class {
    constructor(root) {
      this.summary = el("p", { class: "sample-summary", "aria-live": "polite", "data-testid": "sample-summary" });
      this.legend = el("p", { class: "legend" }, [
        el("span", { class: "swatch memory" }), " memory tier  ",
        el("span", { class: "swatch noise" }), " noise tier  ",
        el("span", { class: "swatch split" }), " memory/noise split of the selected row  ",
        el("span", { class: "swatch unscored" }), " not scored",
      ]);
      const panels = el("div", { class: "anatomy-panels" });
      root.replaceChildren(this.summary, this.legend, panels);
      this.panels = { td: new Panel("td", panels), bu: new Panel("bu", panels) };
    }

    show(sample, meta) {
      this.sample = sample;
      this.summary.textContent =
        (meta.label ? meta.label + " · " : "") + "L = " + sample.matrix.length +
        (sample.index !== undefined ? " · sample #" + sample.index + (meta.samplesTotal ? " of " + meta.samplesTotal : "") : "") +
        " · TD " + F.fmtSigned(sample.td, 4) + " · BU " + F.fmtSigned(sample.bu, 4) +
        " · score (" + meta.scoreVersion + ", " + meta.formula + ") " + F.fmtSigned(sample.score, 2);
      this.panels.td.show(sample, meta);
      this.panels.bu.show(sample, meta);
    }

    state() {
      return { td: this.panels.td.selected, bu: this.panels.bu.selected };
    }
  };
})();
