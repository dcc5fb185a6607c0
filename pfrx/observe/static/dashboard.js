// pfrx dashboard: one EventSource, one card per registered stream, updated in place.
// Every value from the server (stream names, drop reasons) is user-controlled text: it is only
// ever written with textContent or as an SVG coordinate, never parsed as HTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const HEALTHS = ["healthy", "degraded", "unhealthy"];
  const REASONS_SHOWN = 6;
  const cards = new Map(); // name -> {el, history: [[t, out, in, drop, buf], ...]}
  let points = 300;
  let interval = 1;

  const $ = (id) => document.getElementById(id);
  const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const dec = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  function count(n) { return n == null ? "–" : int.format(n); }
  function rate(n) {
    if (n == null) return "–";
    if (n >= 1e6) return dec.format(n / 1e6) + "M/s";
    if (n >= 1e4) return dec.format(n / 1e3) + "k/s";
    return dec.format(n) + "/s";
  }
  function percent(x) { return x == null ? "–" : dec.format(x * 100) + "%"; }
  function clock(t) {
    const d = new Date(t * 1000);
    return d.toLocaleTimeString("en-GB", { hour12: false });
  }
  function ago(seconds) {
    if (seconds < 60) return Math.max(0, Math.round(seconds)) + " s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }
  function field(card, name) { return card.querySelector('[data-field="' + name + '"]'); }
  function set(card, name, text) {
    const el = field(card, name);
    if (el.textContent !== text) el.textContent = text;
  }

  function makeCard(name) {
    const el = $("card-template").content.firstElementChild.cloneNode(true);
    el.dataset.stream = name;
    set(el, "name", name);
    el.title = name;
    return el;
  }

  function addCard(item, history) {
    const el = makeCard(item.name);
    const entry = { el: el, history: history || [] };
    cards.set(item.name, entry);
    // Keep cards in name order, as the server lists them.
    const names = Array.from(cards.keys()).sort();
    const next = names[names.indexOf(item.name) + 1];
    const container = $("streams");
    container.insertBefore(el, next && cards.get(next) ? cards.get(next).el : null);
    return entry;
  }

  function removeCard(name) {
    const entry = cards.get(name);
    if (!entry) return;
    cards.delete(name);
    entry.el.classList.add("leaving");
    entry.el.dataset.leaving = "true";
    setTimeout(() => entry.el.remove(), 400);
  }

  function updateCard(entry, item, now) {
    const el = entry.el;
    const m = item.metrics;
    const before = el.dataset.health;
    if (before !== item.health) {
      el.dataset.health = item.health;
      if (before) flash(el, item.health);
    }
    set(el, "health", item.health);
    set(el, "received", count(m.received));
    set(el, "emitted", count(m.emitted));
    set(el, "dropped", count(m.dropped));
    set(el, "errors", count(m.errors));
    set(el, "backpressure_events", count(m.backpressure_events));
    const point = item.point;
    set(el, "received_rate", rate(m.input_rate));
    set(el, "emitted_rate", rate(m.processing_rate));
    set(el, "dropped_rate", rate(point ? point[3] : null));
    set(el, "error_rate", percent(m.error_rate) + " of input");
    set(el, "buffer", percent(m.buffer_utilization));
    const fill = field(el, "buffer_fill");
    const util = Math.max(0, Math.min(1, m.buffer_utilization || 0));
    fill.style.width = (util * 100).toFixed(1) + "%";
    fill.classList.toggle("high", util > 0.8 && util <= 0.95);
    fill.classList.toggle("full", util > 0.95);
    const changed = field(el, "changed");
    if (item.changed_at != null) {
      const since = now - item.changed_at;
      changed.textContent = "was " + item.previous_health + ", changed " + ago(since) + " (" + clock(item.changed_at) + ")";
      changed.classList.toggle("recent", since < 60);
    } else {
      changed.textContent = item.aliases && item.aliases.length ? "also registered as " + item.aliases.join(", ") : "";
      changed.classList.remove("recent");
    }
    renderReasons(field(el, "reasons"), m.drops_by_reason || {});
    renderOperators(field(el, "operators"), m.operators || []);
    renderCharts(entry, now);
  }

  function flash(el, health) {
    el.classList.remove("flash");
    void el.offsetWidth; // restart the animation
    el.style.setProperty("--flash", "var(--" + ({ healthy: "ok", degraded: "warn", unhealthy: "bad" }[health] || "warn") + ")");
    el.classList.add("flash");
  }

  function renderReasons(list, reasons) {
    const entries = Object.entries(reasons).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const key = JSON.stringify(entries.slice(0, REASONS_SHOWN)) + entries.length;
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren();
    if (!entries.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = "none";
      list.appendChild(li);
      return;
    }
    const top = entries[0][1] || 1;
    for (const [reason, n] of entries.slice(0, REASONS_SHOWN)) {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "reason";
      name.textContent = reason;
      name.title = reason;
      const value = document.createElement("span");
      value.className = "count";
      value.textContent = count(n);
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = ((n / top) * 100).toFixed(1) + "%";
      bar.appendChild(fill);
      li.append(name, value, bar);
      list.appendChild(li);
    }
    if (entries.length > REASONS_SHOWN) {
      const rest = entries.slice(REASONS_SHOWN).reduce((s, e) => s + e[1], 0);
      const li = document.createElement("li");
      li.className = "more";
      li.textContent = "+" + (entries.length - REASONS_SHOWN) + " more reasons (" + count(rest) + ")";
      list.appendChild(li);
    }
  }

  function renderOperators(table, operators) {
    table.hidden = operators.length === 0;
    const body = table.tBodies[0];
    while (body.rows.length > operators.length) body.deleteRow(-1);
    operators.forEach((op, i) => {
      const row = body.rows[i] || body.insertRow();
      while (row.cells.length < 4) row.insertCell();
      const values = [op.name, count(op.received), count(op.emitted), count(op.dropped)];
      values.forEach((text, j) => {
        if (row.cells[j].textContent !== text) row.cells[j].textContent = text;
      });
      row.cells[0].title = op.name;
      row.classList.toggle("lossy", op.dropped > 0);
    });
  }

  // -- charts: plain SVG polylines over the kept history ------------------------------------
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function path(history, column, t0, span, max) {
    const pts = [];
    for (const p of history) {
      const v = p[column];
      if (v == null) continue;
      const x = ((p[0] - t0) / span) * 300;
      const y = 68 - (Math.min(v, max) / max) * 64;
      pts.push(x.toFixed(1) + "," + y.toFixed(1));
    }
    return pts.join(" ");
  }

  function svgEl(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    return el;
  }

  function grid(svg) {
    for (const y of [4, 36, 68]) svg.appendChild(svgEl("line", { x1: 0, x2: 300, y1: y, y2: y, class: "grid" }));
  }

  function renderCharts(entry, now) {
    const h = entry.history;
    // Show at least a minute, growing with the history up to all that is kept.
    const kept = h.length ? now - h[0][0] : 0;
    const full = Math.max(points * interval, 1);
    const span = Math.min(Math.max(kept, Math.min(60, full)), full);
    const t0 = now - span;
    const label = span >= 120 ? "last " + Math.round(span / 60) + " min" : "last " + Math.round(span) + " s";
    set(entry.el, "rate_span", label);
    set(entry.el, "buffer_span", label);
    let top = 0;
    for (const p of h) top = Math.max(top, p[1] || 0, p[2] || 0, p[3] || 0);
    const max = niceMax(top);
    set(entry.el, "rate_max", "≤ " + rate(max).replace("/s", ""));
    const rateSvg = entry.el.querySelector(".rate-chart");
    rateSvg.replaceChildren();
    grid(rateSvg);
    rateSvg.appendChild(svgEl("polyline", { points: path(h, 2, t0, span, max), class: "series s-in" }));
    rateSvg.appendChild(svgEl("polyline", { points: path(h, 1, t0, span, max), class: "series s-out" }));
    rateSvg.appendChild(svgEl("polyline", { points: path(h, 3, t0, span, max), class: "series s-drop" }));
    const bufSvg = entry.el.querySelector(".buffer-chart");
    bufSvg.replaceChildren();
    grid(bufSvg);
    const line = path(h, 4, t0, span, 1);
    if (line) {
      const first = line.split(" ")[0].split(",")[0];
      const last = line.split(" ").slice(-1)[0].split(",")[0];
      bufSvg.appendChild(svgEl("polygon", { points: first + ",68 " + line + " " + last + ",68", class: "a-buf" }));
      bufSvg.appendChild(svgEl("polyline", { points: line, class: "series s-buf" }));
    }
  }

  // -- transitions log ----------------------------------------------------------------------
  function renderTransitions(transitions) {
    const list = $("transitions");
    const key = transitions.length ? transitions[transitions.length - 1].time + ":" + transitions.length : "0";
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren();
    for (const t of transitions.slice().reverse()) {
      const li = document.createElement("li");
      const when = document.createElement("time");
      when.textContent = clock(t.time);
      const who = document.createElement("b");
      who.textContent = t.stream;
      li.append(when, who);
      if (t.kind === "health") {
        li.className = HEALTHS.includes(t.new) ? t.new : "";
        const old = document.createElement("span");
        old.className = "h-" + t.old;
        old.textContent = t.old;
        const now = document.createElement("span");
        now.className = "h-" + t.new;
        now.textContent = t.new;
        li.append(" ", old, " → ", now);
      } else if (t.kind === "appeared") {
        li.className = HEALTHS.includes(t.new) ? t.new : "";
        li.append(" registered (" + t.new + ")");
      } else {
        li.className = "gone";
        li.append(" unregistered");
      }
      list.appendChild(li);
    }
  }

  // -- one message from the server ----------------------------------------------------------
  function apply(message) {
    points = message.points || points;
    interval = message.interval || interval;
    const now = message.time;
    const seen = new Set();
    const tally = { healthy: 0, degraded: 0, unhealthy: 0 };
    for (const item of message.streams) {
      seen.add(item.name);
      tally[item.health] = (tally[item.health] || 0) + 1;
      let entry = cards.get(item.name);
      const history = message.history && message.history[item.name];
      if (!entry) entry = addCard(item, history ? history.slice() : []);
      else if (history) entry.history = history.slice();
      else if (item.point) entry.history.push(item.point);
      if (entry.history.length > points) entry.history.splice(0, entry.history.length - points);
      updateCard(entry, item, now);
    }
    for (const name of Array.from(cards.keys())) if (!seen.has(name)) removeCard(name);
    const first = $("first-reading");
    if (first) first.remove(); // the live cards take over from the server-rendered table
    $("empty").hidden = message.streams.length > 0;
    $("sum-streams").textContent = message.streams.length;
    $("sum-healthy").textContent = tally.healthy;
    $("sum-degraded").textContent = tally.degraded;
    $("sum-unhealthy").textContent = tally.unhealthy;
    renderTransitions(message.transitions || []);
    setConn("live", "live · " + clock(now));
  }

  function setConn(state, text) {
    $("conn").dataset.state = state;
    $("conn-text").textContent = text;
  }

  function connect() {
    const source = new EventSource("api/events");
    source.addEventListener("state", (e) => {
      try { apply(JSON.parse(e.data)); } catch (err) { console.error("pfrx dashboard:", err); }
    });
    source.onerror = () => setConn("lost", "reconnecting…");
  }

  connect();
})();
