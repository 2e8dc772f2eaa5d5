// islet console: the workload map and its time slider (our own code, no libraries).
"use strict";
(function () {
  const svg = document.getElementById("map");
  if (!svg) return;
  const NS = "http://www.w3.org/2000/svg";
  const slider = document.getElementById("slider");
  const win = document.getElementById("window");
  const label = document.getElementById("map-time");
  const summary = document.getElementById("map-summary");
  const list = document.getElementById("flow-list");
  let timer = null;

  const iso = (ms) => new Date(ms).toISOString().replace("T", " ").slice(0, 19);
  const el = (name, attrs) => {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  };
  const text = (tag, s) => { const e = document.createElement(tag); e.textContent = s; return e; };

  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }

  function showFlows(title, url) {
    list.replaceChildren(text("p", "Loading " + title + "…"));
    getJSON(url).then((page) => {
      const t = document.createElement("table");
      t.className = "flows";
      const head = t.createTHead().insertRow();
      for (const h of ["Start", "Source", "Destination", "Proto", "App", "Bytes", "Verdict"]) head.appendChild(text("th", h));
      const body = t.createTBody();
      for (const f of page.items) {
        const row = body.insertRow();
        for (const v of [iso(f.start), f.src_ip + ":" + f.src_port + " " + (f.src.kind === "ip" ? "" : f.src.key),
          f.dest_ip + ":" + f.dest_port + " " + (f.dest.kind === "ip" ? "" : f.dest.key), f.proto, f.app_proto || "",
          String(f.bytes), f.verdict || ""]) row.appendChild(text("td", v));
      }
      list.replaceChildren(text("p", title + ": " + page.total + " flows"), t);
    }).catch((e) => list.replaceChildren(text("p", String(e))));
  }

  function draw(view) {
    svg.replaceChildren();
    const n = view.nodes.length;
    const pos = new Map();
    const cx = 500, cy = 320, r = Math.min(280, 60 + n * 12);
    view.nodes.forEach((node, i) => {
      const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
      pos.set(node.key, [cx + r * Math.cos(a), cy + r * Math.sin(a)]);
    });
    const edges = el("g", {});
    for (const e of view.edges) {
      const [x1, y1] = pos.get(e.src) || [cx, cy];
      const [x2, y2] = pos.get(e.dest) || [cx, cy];
      const cls = e.alerted ? "alerted" : (e.verdict === "deny" ? "deny" : (e.verdict === "allow" ? "allow" : "none"));
      const line = el("line", { x1, y1, x2, y2, class: "edge " + cls, "data-src": e.src, "data-dest": e.dest });
      const t = el("title", {});
      t.textContent = e.src + " → " + e.dest + " " + e.service + " (" + e.verdict + ", " + e.flows + " flows)";
      line.appendChild(t);
      line.addEventListener("click", () => showFlows(e.src + " → " + e.dest,
        "/api/flows?identity=" + encodeURIComponent(e.src) + "&peer=" + encodeURIComponent(e.dest) + "&limit=200"));
      edges.appendChild(line);
    }
    svg.appendChild(edges);
    const to = view.to;
    for (const node of view.nodes) {
      const [x, y] = pos.get(node.key);
      const gone = node.last_seen < to - 60000;
      const g = el("g", { class: "node" + (gone ? " gone" : "") + (node.critical ? " critical" : ""), "data-key": node.key });
      g.appendChild(el("circle", { cx: x, cy: y, r: 9 }));
      const t = el("text", { x: x + 12, y: y + 4 });
      t.textContent = node.kind === "ip" ? node.key : node.key + " (" + node.kind + ")";
      g.appendChild(t);
      const tip = el("title", {});
      tip.textContent = node.key + "\nfirst " + iso(node.first_seen) + "\nlast " + iso(node.last_seen) +
        Object.entries(node.labels).map(([k, v]) => "\n" + k + "=" + v).join("");
      g.appendChild(tip);
      g.addEventListener("click", () => showFlows(node.key,
        "/api/flows?identity=" + encodeURIComponent(node.key) + "&limit=200"));
      svg.appendChild(g);
    }
    summary.textContent = view.nodes.length + " workloads, " + view.edges.length + " edges" + (view.truncated ? " (truncated)" : "");
  }

  function load() {
    const w = Number(win.value);
    const to = (Number(slider.value) + 1) * 60000;
    const from = to - w;
    label.textContent = iso(from) + " – " + iso(to) + " UTC";
    svg.setAttribute("data-from", String(from));
    svg.setAttribute("data-to", String(to));
    getJSON("/api/map?from=" + from + "&to=" + to).then((v) => {
      draw(v);
      svg.setAttribute("data-loaded", String(to));
    }).catch((e) => { summary.textContent = String(e); });
  }

  slider.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 120); });
  win.addEventListener("change", load);
  load();
})();
