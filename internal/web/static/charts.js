// pal's charts, drawn by uPlot (uPlot.iife.min.js, vendored): bars and
// lines by month or by day, and timelines of credit. Each chart is a
// figure with a title that names its unit, a key, a tooltip that follows
// the mouse, a finger or the arrow keys (the chart takes the focus), and
// its numbers in a table a click away. The charts size themselves to the
// page: no chart is wider than its column.
"use strict";

const ink = "#1d2733", gridLine = "#e3e8ef";
const axisFont = "12px system-ui, sans-serif";

// compact says a number shortly for an axis: 12k, 1.5M.
function compact(n) {
  return Number(n).toLocaleString("en", { notation: "compact", maximumFractionDigits: 1 });
}

// el builds an element; strings become text, never HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "style") e.style.cssText = v; // through the CSSOM, which the page's policy allows
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// figure is the frame of a chart: title, plot, tooltip, key, the live
// region the keyboard's moves are read out in, and the numbers. It sizes
// the plot to its column whenever the column changes.
function figure({ id, title, about, label, key, numbers, height, make }) {
  const plot = el("div", { class: "plot", id, tabindex: "0", role: "group", "aria-label": label, "aria-describedby": id + "-about" });
  const tip = el("div", { class: "tip", id: id + "-tip", hidden: true });
  const live = el("p", { class: "sr-only", "aria-live": "polite", id: id + "-live" });
  const fig = el("figure", { class: "chart", id: id + "-figure" },
    el("figcaption", {}, el("span", { class: "chart-title" }, title), about ? el("span", { class: "muted" }, " " + about) : null),
    el("div", { class: "plot-box" }, plot, tip),
    el("p", { class: "sr-only", id: id + "-about" }, "Use the arrow keys to move along the chart; the tooltip reads each point."),
    live,
    key && key.length ? el("ul", { class: "key", id: id + "-key" }, key.map((k) => el("li", {}, el("span", { class: "swatch", style: `background:${k.colour}` }), k.label))) : null,
    numbers ? el("details", { class: "numbers" }, el("summary", {}, "The numbers"), numbers) : null);
  let u = null;
  const width = () => Math.max(200, Math.floor(plot.getBoundingClientRect().width));
  const ro = new ResizeObserver(() => {
    if (!plot.isConnected || plot.clientWidth === 0) return;
    if (!u) {
      u = make(width(), height, plot, tip, live);
      plot.chart = u;
    } else if (Math.abs(u.width - width()) > 1) {
      // A new width moves the cursor off the plot: the tooltip, when it
      // shows, stays where it was along the plot.
      const was = tip.hidden || u.cursor.left < 0 ? null : { left: u.cursor.left / u.over.clientWidth, top: u.cursor.top };
      u.setSize({ width: width(), height });
      if (was) u.setCursor({ left: was.left * u.over.clientWidth, top: was.top });
    }
  });
  ro.observe(plot);
  return fig;
}

// showTip puts the tooltip's lines at a point of the plot, kept inside it.
function showTip(u, tip, lines, left, top) {
  if (!lines) { tip.hidden = true; return; }
  tip.replaceChildren(...lines.map((l, i) => el(i === 0 ? "strong" : "span", {}, l)));
  tip.hidden = false;
  const box = u.over.getBoundingClientRect(), plotBox = tip.parentNode.getBoundingClientRect();
  const x0 = box.left - plotBox.left, y0 = box.top - plotBox.top;
  const w = tip.offsetWidth, h = tip.offsetHeight;
  let x = x0 + left + 12;
  if (x + w > plotBox.width) x = Math.max(0, x0 + left - w - 12);
  const y = Math.max(0, Math.min(y0 + top - h / 2, plotBox.height - h));
  tip.style.left = `${x}px`;
  tip.style.top = `${y}px`;
}

// follow makes a plot's tooltip follow a finger: a touch moves the cursor
// where it lands, as a mouse would.
function follow(u) {
  u.over.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse") return;
    const r = u.over.getBoundingClientRect();
    u.setCursor({ left: e.clientX - r.left, top: e.clientY - r.top });
  });
}

// numbersTable is a chart's numbers as a table.
function numbersTable(head, rows) {
  return el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "The numbers of the chart" },
    el("table", {}, el("thead", {}, el("tr", {}, head.map((c) => el("th", { scope: "col" }, c)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, c)))))));
}

// seriesChart draws series over ordered categories (months, days), each
// {label, short}: bars, stacked when stacked is set, or lines (a series
// with bars: false). Each series is {label, colour, values, bars}; at most
// one is bars unless they are stacked. format says a value with its unit.
function seriesChart({ id, title, about, unit, categories, series, stacked, format, height = 240 }) {
  const n = categories.length;
  const shown = series.filter((s) => s.values.some((v) => v));
  const plotted = shown.length ? shown : series.slice(0, 1);
  // Stacked bars: each series is drawn as the sum of itself and those
  // below it, the top one first, so that each shows its own band.
  const tops = plotted.map((s, i) => s.values.map((_, j) => plotted.slice(0, i + 1).reduce((a, t) => a + (t.values[j] || 0), 0)));
  const order = stacked ? plotted.map((_, i) => plotted.length - 1 - i) : plotted.map((_, i) => i);
  const data = [categories.map((_, i) => i), ...order.map((i) => (stacked ? tops[i] : plotted[i].values))];
  const max = Math.max(1, ...data.slice(1).flat().filter((v) => v !== null));
  const lines = (idx) => [categories[idx].label, ...plotted.map((s) => `${s.label}: ${format(s.values[idx] || 0)}`),
    ...(stacked && plotted.length > 1 ? [`In all: ${format(tops[tops.length - 1][idx])}`] : [])];
  const numbers = numbersTable(["", ...plotted.map((s) => s.label), ...(stacked && plotted.length > 1 ? ["In all"] : [])],
    categories.map((c, j) => [c.label, ...plotted.map((s) => format(s.values[j] || 0)), ...(stacked && plotted.length > 1 ? [format(tops[tops.length - 1][j])] : [])]));
  return figure({ id, title, about, height, numbers,
    label: `${title}, ${categories.length ? `${categories[0].label} to ${categories[n - 1].label}` : "no data"}`,
    key: plotted.map((s) => ({ label: s.label, colour: s.colour })),
    make: (width, h, plot, tip, live) => {
      const u = new uPlot({
        width, height: h, legend: { show: false },
        cursor: { y: false, points: { show: false }, drag: { x: false, y: false, setScale: false } },
        scales: { x: { time: false, range: () => [-0.5, n - 0.5] }, y: { range: (_, lo, hi) => [0, Math.max(hi, max) * 1.08] } },
        axes: [
          { stroke: ink, font: axisFont, grid: { show: false }, ticks: { stroke: gridLine }, space: 64, incrs: [1, 2, 3, 4, 6, 12, 24],
            values: (_, splits) => splits.map((i) => (categories[i] ? categories[i].short : "")) },
          { stroke: ink, font: axisFont, label: unit, labelFont: axisFont, labelSize: 22, size: 52, grid: { stroke: gridLine }, ticks: { stroke: gridLine },
            values: (_, splits) => splits.map(compact) },
        ],
        series: [{}, ...order.map((i) => {
          const s = plotted[i];
          return s.bars === false ?
            { label: s.label, stroke: s.colour, width: 2, points: { show: true, size: 6, fill: s.colour } } :
            { label: s.label, stroke: s.colour, fill: s.colour, width: 0, points: { show: false },
              paths: uPlot.paths.bars({ size: [0.7, 56], align: 0 }) };
        })],
        hooks: {
          setCursor: [(u) => {
            const idx = u.cursor.idx;
            showTip(u, tip, idx === null || idx === undefined ? null : lines(idx), u.cursor.left, u.cursor.top > 0 ? u.cursor.top : u.over.clientHeight / 2);
          }],
        },
      }, data, plot);
      follow(u);
      let at = n - 1;
      const go = (i) => {
        at = Math.max(0, Math.min(n - 1, i));
        u.setCursor({ left: u.valToPos(at, "x"), top: u.over.clientHeight / 2 });
        live.textContent = lines(at).join(", ");
      };
      plot.addEventListener("keydown", (e) => {
        const to = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: n - 1 }[e.key];
        if (to === undefined || n === 0) return;
        e.preventDefault();
        go(to);
      });
      plot.addEventListener("focus", () => { if (n) go(at); });
      plot.addEventListener("blur", () => { u.setCursor({ left: -10, top: -10 }); tip.hidden = true; });
      return u;
    } });
}

// timelineChart draws bars over time in lanes: lanes are names; bars are
// {lane, from, to (seconds), colour, text (shown on the bar when it
// fits), dark (white text), tip (lines of the tooltip)}. A click, Enter or
// a tap picks the instant under the cursor (pick(seconds)). The arrow keys
// move from one change to the next (left, right) and between lanes (up,
// down); Home and End go to the first and the last instant.
function timelineChart({ id, title, about, lanes, bars, start, end, pick }) {
  const laneHeight = 46, height = 34 + laneHeight * lanes.length;
  const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
  const day = (t) => new Date(t * 1e3).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  const stops = [...new Set(bars.map((b) => b.from).concat([start, end]))].filter((t) => t >= start && t <= end).sort((a, b) => a - b);
  const under = (lane, t) => bars.find((b) => b.lane === lane && b.from <= t && t < b.to) || bars.find((b) => b.lane === lane && b.from <= t && t <= b.to);
  const tipLines = (lane, t) => {
    const b = under(lane, t);
    return [`${day(t)}, ${lanes[lane]}`, ...(b ? b.tip : ["nothing"])];
  };
  return figure({ id, title, about, height,
    label: `${title}: ${lanes.join(", ")}, from ${day(start).slice(0, 10)} to ${day(end).slice(0, 10)}. Press Enter to explain the instant under the cursor.`,
    make: (width, h, plot, tip, live) => {
      let lane = 0, t = end;
      const u = new uPlot({
        width, height: h, legend: { show: false }, tzDate: utc,
        cursor: { y: false, points: { show: false }, drag: { x: false, y: false, setScale: false } },
        scales: { x: { time: true, range: () => [start, end] }, y: { range: () => [0, lanes.length] } },
        axes: [{ stroke: ink, font: axisFont, grid: { stroke: gridLine }, ticks: { stroke: ink, size: 6 }, space: 70 }, { show: false }],
        series: [{}, { paths: () => null, points: { show: false } }],
        hooks: {
          draw: [(u) => {
            const ctx = u.ctx, r = devicePixelRatio;
            ctx.save();
            ctx.font = `${12 * r}px system-ui, sans-serif`;
            ctx.textBaseline = "middle";
            ctx.textAlign = "left";
            const laneTop = (i) => u.valToPos(lanes.length - i, "y", true);
            const laneBottom = (i) => u.valToPos(lanes.length - i - 1, "y", true);
            lanes.forEach((name, i) => {
              ctx.fillStyle = ink;
              ctx.fillText(name, u.bbox.left + 4 * r, laneTop(i) + 9 * r);
            });
            for (const b of bars) {
              const x0 = Math.max(u.bbox.left, u.valToPos(b.from, "x", true)), x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(b.to, "x", true));
              const y0 = laneTop(b.lane) + 18 * r, y1 = laneBottom(b.lane) - 3 * r;
              ctx.globalAlpha = b.alpha || 1;
              ctx.fillStyle = b.colour;
              ctx.fillRect(x0, y0, Math.max(3 * r, x1 - x0), y1 - y0);
              ctx.globalAlpha = 1;
              ctx.strokeStyle = "#fff";
              ctx.strokeRect(x0, y0, Math.max(r, x1 - x0), y1 - y0);
              if (b.text && ctx.measureText(b.text).width + 8 * r < x1 - x0) {
                ctx.fillStyle = b.dark ? "#fff" : ink;
                ctx.fillText(b.text, x0 + 4 * r, (y0 + y1) / 2);
              }
            }
            ctx.restore();
          }],
          setCursor: [(u) => {
            if (u.cursor.left === undefined || u.cursor.left < 0) { tip.hidden = true; return; }
            t = u.posToVal(u.cursor.left, "x");
            if (u.cursor.top >= 0) lane = Math.max(0, Math.min(lanes.length - 1, lanes.length - 1 - Math.floor(u.posToVal(u.cursor.top, "y"))));
            showTip(u, tip, tipLines(lane, t), u.cursor.left, u.valToPos(lanes.length - lane - 0.5, "y"));
          }],
        },
      }, [[start, end], [null, null]], plot);
      follow(u);
      u.over.addEventListener("click", () => pick(Math.round(u.posToVal(u.cursor.left, "x"))));
      const go = (to, toLane = lane) => {
        t = Math.max(start, Math.min(end, to));
        lane = Math.max(0, Math.min(lanes.length - 1, toLane));
        u.setCursor({ left: u.valToPos(t, "x"), top: u.valToPos(lanes.length - lane - 0.5, "y") });
        live.textContent = tipLines(lane, t).join(". ");
      };
      plot.addEventListener("keydown", (e) => {
        const next = stops.find((s) => s > t), previous = [...stops].reverse().find((s) => s < t);
        switch (e.key) {
          case "ArrowRight": go(next === undefined ? end : next); break;
          case "ArrowLeft": go(previous === undefined ? start : previous); break;
          case "ArrowUp": go(t, lane - 1); break;
          case "ArrowDown": go(t, lane + 1); break;
          case "Home": go(start); break;
          case "End": go(end); break;
          case "Enter": case " ": pick(Math.round(t)); break;
          default: return;
        }
        e.preventDefault();
      });
      plot.addEventListener("focus", () => go(t));
      plot.addEventListener("blur", () => { u.setCursor({ left: -10, top: -10 }); tip.hidden = true; });
      return u;
    } });
}
