// pyscatter service page: a map of one result, refreshed every second, and the I(q), I(chi) with
// its fit and the detector frame of the position clicked. Everything shown is also kept in
// window.pyscatter (the last responses of /api/map, /api/position, /api/frame) for tests.
"use strict";

const POLL_MS = 1000;
const WHEEL = Array.from({ length: 13 }, (_, k) => [k / 12, `hsl(${30 * k},85%,50%)`]);
const state = {
  file: null, groups: [], group: null, quantity: null, map: null, director: null,
  position: null, frame: null, selected: null, polls: 0, busy: false,
};
window.pyscatter = state;
const $ = (id) => document.getElementById(id);

async function api(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
  }
  const reply = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.error || reply.statusText);
  return body;
}

function showError(err) { $("error").textContent = err ? String(err.message || err) : ""; }

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value; o.textContent = text; select.appendChild(o);
}

function hashParams() {
  return new URLSearchParams(window.location.hash.replace(/^#/, ""));
}

async function loadFiles() {
  const listing = await api("/api/files");
  const select = $("file");
  const wanted = hashParams().get("file") || state.file;
  select.innerHTML = "";
  for (const f of listing.files) option(select, f.path, f.path);
  if (wanted && listing.files.some((f) => f.path === wanted)) select.value = wanted;
  state.file = select.value || null;
  await loadGroups(true);
}

function preferredGroup(groups) {
  const order = ["OrderParameter", "Clustering", "AzimuthalIntegration"];
  for (const p of order) {
    const g = groups.filter((x) => x.process === p).pop();
    if (g) return g.path;
  }
  return groups.length ? groups[groups.length - 1].path : null;
}

async function loadGroups(reset) {
  if (!state.file) return;
  const summary = await api("/api/results", { file: state.file });
  const paths = summary.groups.map((g) => g.path).join("|");
  const changed = paths !== state.groups.map((g) => g.path).join("|");
  state.groups = summary.groups;
  state.summary = summary;
  if (changed || reset) {
    const select = $("group");
    select.innerHTML = "";
    for (const g of summary.groups) option(select, g.path, `${g.process} — ${g.path.split("/").pop()}`);
    const wanted = hashParams().get("group");
    const keep = [state.group, wanted].find((p) => p && summary.groups.some((g) => g.path === p));
    select.value = keep || preferredGroup(summary.groups) || "";
    state.group = select.value || null;
    fillQuantities();
  }
  const live = summary.live_state ? ` · ${summary.live_state}` : "";
  const writer = summary.writer ? ` · written by ${summary.writer}` : "";
  $("status").dataset.live = summary.live_state || "";
  $("status").title = writer;
  $("status").dataset.summary = `${summary.groups.length} results${live}`;
}

function currentGroup() { return state.groups.find((g) => g.path === state.group) || null; }

function fillQuantities() {
  const group = currentGroup();
  const select = $("quantity");
  const before = state.quantity || hashParams().get("quantity");
  select.innerHTML = "";
  if (!group) { state.quantity = null; return; }
  for (const d of group.datasets) option(select, d.name, d.name);
  const names = group.datasets.map((d) => d.name);
  const preferred = ["S", "Labels", "Intensity"].find((n) => names.includes(n));
  select.value = names.includes(before) ? before : preferred || names[0];
  state.quantity = select.value;
  const dset = group.datasets.find((d) => d.name === state.quantity);
  const resultDims = dset ? dset.dims.slice(dset.position_dims) : [];
  $("q-box").style.display = resultDims.length === 1 && /^q/.test(resultDims[0]) ? "" : "none";
  $("index-box").style.display = dset && dset.shape.slice(dset.position_dims).reduce((a, b) => a * b, 1) > 1 ? "" : "none";
  $("sticks-box").style.display = names.includes("director") && state.quantity !== "director" ? "" : "none";
  if (state.quantity === "director") $("colorscale").value = "Wheel";
}

async function refreshMap() {
  if (!state.file || !state.group || !state.quantity) return;
  const qmin = $("qmin").value, qmax = $("qmax").value;
  const useQ = $("q-box").style.display !== "none" && qmin !== "" && qmax !== "";
  const params = {
    file: state.file, group: state.group, quantity: state.quantity,
    index: useQ ? null : $("index").value || 0,
    q_min: useQ ? qmin : null, q_max: useQ ? qmax : null,
  };
  state.map = await api("/api/map", params);
  state.director = null;
  if ($("sticks").checked && $("sticks-box").style.display !== "none") {
    state.director = await api("/api/map", { ...params, quantity: "director", q_min: null, q_max: null });
  }
  drawMap();
  $("status").textContent =
    `${state.map.complete_positions} of ${state.map.n_positions} positions · ${$("status").dataset.summary || ""}`;
}

function colorscale(name) { return name === "Wheel" ? WHEEL : name; }

function mapValues(values) {
  if (!$("logscale").checked) return values;
  return values.map((v) => (v !== null && v > 0 ? Math.log10(v) : null));
}

function drawMap() {
  const m = state.map, gd = $("map");
  const values = mapValues(m.values);
  gd.dataset.positions = String(m.n_positions);
  gd.dataset.complete = String(m.complete_positions);
  const dims = m.dims;
  const units = m.units && m.units !== "1" ? ` [${m.units}]` : "";
  const label = `${m.label}${units}${$("logscale").checked ? " (log10)" : ""}`;
  const uirevision = `${m.file}|${m.group}|${m.quantity}`;
  const scale = colorscale($("colorscale").value);
  let traces, layout;
  if (dims.length === 1) {
    const x = dims[0].values.slice(0, values.length);
    traces = [{ type: "scatter", mode: "lines+markers", x, y: values, name: m.quantity }];
    if (state.selected !== null && state.selected < x.length) {
      traces.push({ type: "scatter", mode: "markers", x: [x[state.selected]], y: [values[state.selected]],
        marker: { size: 14, symbol: "circle-open", color: "red" }, hoverinfo: "skip", showlegend: false });
    }
    layout = { xaxis: { title: { text: `${dims[0].name} [${dims[0].units}]` } },
      yaxis: { title: { text: label } }, showlegend: false };
  } else {
    const nx = dims[dims.length - 1].values.length;
    const ny = Math.ceil(values.length / nx);
    const z = [];
    for (let r = 0; r < ny; r++) z.push(values.slice(r * nx, (r + 1) * nx));
    const xs = dims[dims.length - 1].values;
    const ys = dims.length === 2 ? dims[0].values.slice(0, ny) : Array.from({ length: ny }, (_, k) => k);
    const director = m.quantity === "director";
    traces = [{ type: "heatmap", x: xs, y: ys, z, colorscale: scale, zmin: director ? -90 : undefined,
      zmax: director ? 90 : undefined, colorbar: { title: { text: label } }, hoverongaps: false }];
    if (state.director) traces.push(sticks(xs, ys, state.director.values, nx));
    if (state.selected !== null) {
      const r = Math.floor(state.selected / nx), c = state.selected % nx;
      if (r < ny) traces.push({ type: "scatter", mode: "markers", x: [xs[c]], y: [ys[r]], hoverinfo: "skip",
        marker: { size: 16, symbol: "square-open", color: "red", line: { width: 2 } }, showlegend: false });
    }
    const yname = dims.length === 2 ? `${dims[0].name} [${dims[0].units}]` :
      dims.slice(0, -1).map((d) => d.name).join(" × ") + " (flat)";
    layout = { xaxis: { title: { text: `${dims[dims.length - 1].name} [${dims[dims.length - 1].units}]` } },
      yaxis: { title: { text: yname }, scaleanchor: dims.length === 2 ? "x" : undefined } };
  }
  layout.title = { text: `${m.quantity} — ${m.group.split("/").pop()}` };
  layout.margin = { t: 40, r: 10, b: 50, l: 60 };
  layout.uirevision = uirevision;
  Plotly.react(gd, traces, layout, { displaylogo: false, responsive: true });
  if (!gd.dataset.bound) {
    gd.on("plotly_click", onMapClick);
    gd.dataset.bound = "1";
  }
  gd.dataset.revision = String(++state.polls);
}

function sticks(xs, ys, angles, nx) {
  const dx = xs.length > 1 ? Math.abs(xs[1] - xs[0]) : 1;
  const dy = ys.length > 1 ? Math.abs(ys[1] - ys[0]) : dx;
  const half = 0.4 * Math.min(dx, dy);
  const x = [], y = [];
  angles.forEach((a, k) => {
    if (a === null) return;
    const r = Math.floor(k / nx), c = k % nx, t = (a * Math.PI) / 180;
    x.push(xs[c] - half * Math.cos(t), xs[c] + half * Math.cos(t), null);
    y.push(ys[r] - half * Math.sin(t), ys[r] + half * Math.sin(t), null);
  });
  return { type: "scatter", mode: "lines", x, y, line: { color: "black", width: 1.5 }, hoverinfo: "skip",
    showlegend: false };
}

function onMapClick(event) {
  const p = event.points && event.points[0];
  if (!p || p.curveNumber !== 0) return;
  const dims = state.map.dims;
  let index;
  if (dims.length === 1) index = p.pointIndex;
  else {
    const nx = dims[dims.length - 1].values.length;
    index = p.pointIndex[0] * nx + p.pointIndex[1];
  }
  selectPosition(index).catch(showError);
}

async function selectPosition(index) {
  state.selected = index;
  const [position, frame] = await Promise.all([
    api("/api/position", { file: state.file, index }),
    api("/api/frame", { file: state.file, index, max_size: 192 }).catch(() => null),
  ]);
  if (state.selected !== index) return;  // another position was clicked meanwhile
  state.position = position;
  state.frame = frame;
  drawPosition();
  if (state.map) drawMap();
}

function drawPosition() {
  const p = state.position;
  const where = Object.entries(p.position).map(([k, v]) => `${k}=${Number(v).toPrecision(4)}`).join(", ");
  $("position-title").textContent = `position ${p.index} (${where})`;
  const iq = $("iq");
  if (p.iq) {
    Plotly.react(iq, [{ type: "scatter", mode: "lines", x: p.iq.x, y: p.iq.y, name: "I(q)" }], {
      title: { text: "I(q)" }, margin: { t: 30, r: 10, b: 40, l: 60 },
      xaxis: { title: { text: `q [${p.q_units || ""}]` } }, yaxis: { type: "log" },
    }, { displaylogo: false });
  }
  iq.dataset.index = String(p.index);
  const traces = [];
  p.rings.forEach((ring, k) => {
    const q = ring.q === null ? "" : ` q=${ring.q.toPrecision(3)}`;
    traces.push({ type: "scatter", mode: "markers", x: ring.profile.x, y: ring.profile.y,
      name: `ring ${k}${q}`, marker: { size: 4 } });
    if (ring.fit) traces.push({ type: "scatter", mode: "lines", x: ring.profile.x, y: ring.fit,
      name: `fit ${k}`, line: { width: 2 } });
  });
  Plotly.react($("ichi"), traces, { title: { text: `I(χ)${p.fit_model ? " with " + p.fit_model + " fit" : ""}` },
    margin: { t: 30, r: 10, b: 40, l: 60 }, xaxis: { title: { text: "χ [deg]" } } }, { displaylogo: false });
  $("ichi").dataset.index = String(p.index);
  drawXrf(p);
  drawFrame();
}

// An MCA spectrum (log) with the fast linear fit, its background and the lines of the fitted
// groups marked ("Fe Kα"): the position's XRF fit, recomputed by the server.
function drawXrf(p) {
  const gd = $("xrf"), x = p.xrf;
  gd.hidden = !x;
  if (!x) { Plotly.purge(gd); return; }
  const positive = (v) => (v !== null && v > 0 ? v : null);
  const traces = [{ type: "scatter", mode: "markers", x: x.energy, y: x.counts.map(positive),
    name: "measured", marker: { size: 3, color: "#555" } }];
  if (x.model) traces.push({ type: "scatter", mode: "lines", x: x.energy, y: x.model.map(positive),
    name: "fit", line: { width: 2, color: "#d62728" } });
  if (x.background) traces.push({ type: "scatter", mode: "lines", x: x.energy,
    y: x.background.map(positive), name: "background", line: { width: 1, dash: "dash" } });
  const shapes = x.markers.map((m) => ({ type: "line", xref: "x", yref: "paper", x0: m.energy,
    x1: m.energy, y0: 0, y1: 1, line: { color: "green", width: 1 }, opacity: 0.5 }));
  const annotations = x.markers.map((m) => ({ x: m.energy, y: 1, xref: "x", yref: "paper",
    text: m.label, textangle: -90, showarrow: false, yanchor: "top", font: { size: 9 } }));
  const areas = Object.entries(x.areas).map(([k, v]) => `${k} ${v === null ? "–" : v.toPrecision(3)}`);
  Plotly.react(gd, traces, { title: { text: `XRF spectrum: ${areas.join(", ")}`.slice(0, 110) },
    shapes, annotations, margin: { t: 30, r: 10, b: 40, l: 60 },
    xaxis: { title: { text: "energy [keV]" } }, yaxis: { type: "log" } }, { displaylogo: false });
  gd.dataset.index = String(p.index);
}

function drawFrame() {
  const f = state.frame, gd = $("frame");
  $("frame-note").textContent = f && !f.image ? "frame not measured yet" : "";
  if (!f || !f.image) { Plotly.purge(gd); return; }
  const z = f.image.map((row) => row.map((v) => (v !== null && v > 0 ? Math.log10(v) : null)));
  const x = z[0].map((_, c) => (c + 0.5) * f.step), y = z.map((_, r) => (r + 0.5) * f.step);
  const traces = [{ type: "heatmap", x, y, z, colorscale: "Greys", reversescale: true, showscale: false }];
  if (f.q) {
    for (const ring of f.rings) {
      traces.push({ type: "contour", x, y, z: f.q, showscale: false, hoverinfo: "skip",
        name: `q=${ring}`, contours: { coloring: "none", start: ring, end: ring, size: 1 },
        line: { color: "red", width: 2 },
        autocontour: false, ncontours: 1 });
    }
  }
  Plotly.react(gd, traces, { title: { text: `frame (log, ${f.step}×${f.step} blocks), rings in red` },
    margin: { t: 30, r: 10, b: 30, l: 40 }, yaxis: { autorange: "reversed", scaleanchor: "x" } },
  { displaylogo: false });
}

async function refreshJobs() {
  const { jobs } = await api("/api/jobs");
  $("jobs").textContent = jobs.map((j) => {
    const p = j.progress ? ` · ${JSON.stringify(j.progress).slice(0, 120)}` : "";
    return `job ${j.id} ${j.state} → ${j.output}${j.exit_code !== null ? " (exit " + j.exit_code + ")" : ""}${p}`;
  }).join("\n");
}

async function poll() {
  if (state.busy) return;
  state.busy = true;
  try {
    if (state.polls % 5 === 0) { await loadGroups(false); await refreshJobs(); }
    await refreshMap();
    const p = state.position;
    const shown = p && p.index === state.selected;
    if (state.selected !== null && (!shown || (p.iq && p.iq.y.every((v) => v === null)))) {
      // the position's request failed, or it was clicked before it was computed: again
      await selectPosition(state.selected);
    }
    showError(null);
  } catch (err) {
    showError(err);
  } finally {
    state.busy = false;
  }
}

function bind() {
  $("file").addEventListener("change", async () => {
    state.file = $("file").value; state.selected = null; state.groups = [];
    await loadGroups(true).catch(showError); poll();
  });
  $("group").addEventListener("change", () => { state.group = $("group").value; fillQuantities(); poll(); });
  $("quantity").addEventListener("change", () => { state.quantity = $("quantity").value; fillQuantities(); poll(); });
  window.addEventListener("hashchange", () => {
    const wanted = hashParams();
    state.file = wanted.get("file") || state.file;
    state.group = wanted.get("group") || null;
    state.quantity = wanted.get("quantity") || null;
    if (wanted.get("index")) $("index").value = wanted.get("index");
    state.selected = null; state.groups = [];
    loadFiles().then(poll).catch(showError);
  });
  for (const id of ["index", "qmin", "qmax", "colorscale", "logscale", "sticks"]) {
    $(id).addEventListener("change", () => { poll(); });
  }
}

async function main() {
  bind();
  if (hashParams().get("index")) $("index").value = hashParams().get("index");
  try {
    await loadFiles();
    await poll();
  } catch (err) {
    showError(err);
  }
  setInterval(poll, POLL_MS);
}

main();
