/* Finesse site helpers shared by the leaderboard and the lab: DOM building, number formats,
   colour scales readable by colour-blind users (viridis; Okabe–Ito for categories), tabs. */
"use strict";

const Finesse = (window.Finesse = window.Finesse || {});

/** Create an element; text is always set with textContent (data never becomes markup). */
Finesse.el = function (tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key === "style") {
      for (const [prop, v] of Object.entries(value)) {
        if (prop.startsWith("--")) node.style.setProperty(prop, v);
        else node.style[prop] = v;
      }
    }
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of [].concat(children || [])) {
    if (child === null || child === undefined) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
};

Finesse.fmt = function (value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toFixed(digits === undefined ? 2 : digits);
};

Finesse.fmtSigned = function (value, digits) {
  if (value === null || value === undefined) return "–";
  const text = Number(value).toFixed(digits === undefined ? 3 : digits);
  return value > 0 ? "+" + text : text.replace("-", "−");
};

Finesse.fmtMs = function (value) {
  if (value === null || value === undefined) return "–";
  if (value >= 100) return value.toFixed(0) + " ms";
  if (value >= 1) return value.toFixed(2) + " ms";
  return value.toPrecision(2) + " ms";
};

/** Compact ranges: [4,5,6,8] -> "4–6, 8". */
Finesse.ranges = function (values) {
  const sorted = [...values].sort((a, b) => a - b);
  const parts = [];
  let start = null;
  let prev = null;
  for (const v of sorted) {
    if (start === null) start = prev = v;
    else if (v === prev + 1) prev = v;
    else {
      parts.push(start === prev ? String(start) : start + "–" + prev);
      start = prev = v;
    }
  }
  if (start !== null) parts.push(start === prev ? String(start) : start + "–" + prev);
  return parts.join(", ");
};

// Viridis, 9 stops (matplotlib), interpolated linearly in RGB.
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

Finesse.viridis = function (t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + f * (VIRIDIS[i + 1][k] - v)));
  return { css: "rgb(" + c.join(",") + ")", dark: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] < 140 };
};

Finesse.viridisGradient = function () {
  return "linear-gradient(to right, " + VIRIDIS.map((c) => "rgb(" + c.join(",") + ")").join(", ") + ")";
};

// Okabe–Ito categorical palette (yellow left out: too pale on white); dashes tell series apart past it.
Finesse.PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000"];
Finesse.seriesStyle = function (index) {
  const n = Finesse.PALETTE.length;
  const dashes = [null, [8, 4], [2, 3], [10, 3, 2, 3]];
  return { color: Finesse.PALETTE[index % n], dash: dashes[Math.floor(index / n) % dashes.length] };
};

/** Linear-interpolated quantile (numpy's default), q in [0, 1]. */
Finesse.quantile = function (values, q) {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return null;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
};

/** ARIA tabs: buttons [role=tab][aria-controls]; arrows, Home and End move between them; hash selects. */
Finesse.setupTabs = function (tablist, onChange) {
  const tabs = [...tablist.querySelectorAll('[role="tab"]')];
  function select(tab, focus) {
    for (const t of tabs) {
      const active = t === tab;
      t.setAttribute("aria-selected", String(active));
      t.tabIndex = active ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !active;
    }
    if (focus) tab.focus();
    if (history.replaceState) history.replaceState(null, "", "#" + tab.dataset.view);
    if (onChange) onChange(tab.dataset.view);
  }
  tablist.addEventListener("click", (e) => {
    const tab = e.target.closest('[role="tab"]');
    if (tab) select(tab, false);
  });
  tablist.addEventListener("keydown", (e) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    select(tabs[(next + tabs.length) % tabs.length], true);
  });
  const fromHash = tabs.find((t) => "#" + t.dataset.view === location.hash);
  select(fromHash || tabs[0], false);
  return { select: (view) => select(tabs.find((t) => t.dataset.view === view), false) };
};
