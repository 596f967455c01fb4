// omnimem web UI: small enhancements over server-rendered pages; every page works without them.
// Data is only ever put in the page as text (textContent / append of strings) or as the server's
// own autoescaped fragments parsed with DOMParser: never innerHTML.
"use strict";
(() => {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // h("a", {href: "/x", class: "y"}, "text", child): an element; strings become text nodes.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  const clock = (seconds) => {
    const s = Math.max(0, Math.floor(seconds || 0));
    const mm = String(Math.floor((s % 3600) / 60)), ss = String(s % 60).padStart(2, "0");
    return s >= 3600 ? `${Math.floor(s / 3600)}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  };

  // GET a fragment of the server's (autoescaped) HTML and return its nodes, adopted into this document.
  async function fragment(url, signal) {
    const res = await fetch(url, { headers: { Accept: "text/html" }, signal, credentials: "same-origin" });
    if (res.redirected && new URL(res.url).pathname === "/signin") {
      window.location.assign(res.url);
      return [];
    }
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const main = doc.querySelector("main") || doc.body;  // an error page: keep its main part
    return [...main.childNodes].map((node) => document.adoptNode(node));
  }

  async function errorText(res) {
    try { return (await res.json()).detail || res.statusText; } catch (_) { return res.statusText; }
  }

  // -- search as you type -------------------------------------------------------------------------
  function liveSearch(form) {
    const target = document.getElementById(form.dataset.live);
    let timer = null, controller = null;
    const run = async () => {
      const params = new URLSearchParams(new FormData(form));
      history.replaceState(null, "", `${form.action}?${params}`);
      params.set("partial", "1");
      if (controller) controller.abort();
      controller = new AbortController();
      target.setAttribute("aria-busy", "true");
      try {
        target.replaceChildren(...await fragment(`${form.action}?${params}`, controller.signal));
      } catch (err) {
        if (err.name !== "AbortError") target.replaceChildren(h("p", { class: "error" }, `Search failed: ${err.message}`));
      } finally {
        target.removeAttribute("aria-busy");
      }
    };
    const later = () => { clearTimeout(timer); timer = setTimeout(run, 250); };
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); clearTimeout(timer); run(); });
  }

  // -- media: play an item's source from a second ---------------------------------------------------
  function dockPlayer(kind) {
    const dock = document.getElementById("player-dock");
    const video = document.getElementById("player-video"), audio = document.getElementById("player-audio");
    const player = kind === "audio" ? audio : video;
    const other = player === video ? audio : video;
    other.pause();
    other.hidden = true;
    player.hidden = false;
    dock.hidden = false;
    return player;
  }

  function play(el) {
    const player = (el.dataset.player && document.getElementById(el.dataset.player)) || dockPlayer(el.dataset.kind);
    const src = new URL(el.dataset.src, window.location.href).href;
    const start = parseFloat(el.dataset.start) || 0;
    const seek = () => {
      player.currentTime = start;
      const started = player.play();
      if (started && started.catch) started.catch(() => {});  // autoplay refused: the player shows its play button
    };
    if (player.currentSrc !== src && player.getAttribute("src") !== el.dataset.src) {
      player.addEventListener("loadedmetadata", seek, { once: true });
      player.src = src;
      player.load();
    } else if (player.readyState >= 1) {
      seek();
    } else {
      player.addEventListener("loadedmetadata", seek, { once: true });
    }
  }

  document.addEventListener("click", (ev) => {
    const el = ev.target.closest("[data-play]");
    if (!el || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    play(el);
  });

  function closePlayer() {
    const dock = document.getElementById("player-dock");
    for (const p of dock.querySelectorAll("video, audio")) p.pause();
    dock.hidden = true;
  }

  // -- ask: the answer streamed as JSON lines ---------------------------------------------------------
  function cited(el, text, known) {
    el.replaceChildren();
    const re = /\[([^[\]]+)\]/g;
    let last = 0, m;
    while ((m = re.exec(text)) !== null) {
      el.append(text.slice(last, m.index));
      const ids = m[1].split(",").map((s) => s.trim());
      if (ids.length && ids.every((id) => known.has(id))) {
        el.append("[");
        ids.forEach((id, i) => { if (i) el.append(", "); el.append(h("a", { href: `#ev-${id}`, class: "cite" }, id)); });
        el.append("]");
      } else {
        el.append(m[0]);
      }
      last = re.lastIndex;
    }
    el.append(text.slice(last));
  }

  function evidenceItem(e) {
    const meta = h("p", { class: "meta" }, h("span", { class: "cite" }, e.id), " ", h("span", { class: "badge kind" }, e.kind),
      " ", h("span", { class: "tokens" }, `${e.tokens} tokens`), " ", ...e.retrievers.map((r) => h("span", { class: "badge retriever" }, r)));
    const links = h("p", { class: "actions" });
    if (e.media && e.span) {
      links.append(h("a", { class: "play", href: `${e.media}#t=${e.span[0].toFixed(2)}`, "data-play": true, "data-kind": e.modality,
        "data-src": e.media, "data-start": e.span[0] }, `▶ Play from ${clock(e.span[0])}`));
    }
    if (e.href) links.append(h("a", { href: e.href }, "Open the evidence"));
    return h("li", { class: `entry kind-${e.kind}`, id: `ev-${e.id}` }, meta, h("p", { class: "text" }, e.text), links);
  }

  function ask(form) {
    const out = document.getElementById("ask-out"), status = document.getElementById("ask-status");
    const answer = document.getElementById("ask-answer"), list = document.getElementById("ask-evidence");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      out.hidden = false;
      answer.replaceChildren();
      list.replaceChildren();
      status.textContent = "Finding the evidence…";
      const button = form.querySelector("button");
      button.disabled = true;
      const known = new Set();
      let text = "";
      const handle = (msg) => {
        if (msg.type === "evidence") {
          msg.evidence.forEach((e) => { known.add(e.id); list.append(evidenceItem(e)); });
          status.textContent = msg.evidence.length ? "Answering…" : "No evidence found; answering anyway…";
        } else if (msg.type === "token") {
          text += msg.text;
          answer.append(msg.text);
        } else if (msg.type === "no_model") {
          status.textContent = "No model is configured on this server: here is the evidence it would be given.";
          answer.textContent = "(no model configured)";
        } else if (msg.type === "done") {
          cited(answer, msg.answer || text, known);
          status.textContent = msg.citations.length ? `Answered, citing ${msg.citations.join(", ")}.` : "Answered, citing no evidence.";
        } else if (msg.type === "error") {
          status.textContent = msg.message;
        }
      };
      try {
        const res = await fetch(form.action, {
          method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin",
          headers: { Accept: "application/x-ndjson", "X-CSRF-Token": csrf() },
        });
        if (!res.ok) { status.textContent = `Could not ask: ${await errorText(res)}`; return; }
        const reader = res.body.getReader(), decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let nl;
          while ((nl = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, nl).trim();
            buffer = buffer.slice(nl + 1);
            if (line) handle(JSON.parse(line));
          }
        }
      } catch (err) {
        status.textContent = `Could not ask: ${err.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }

  // -- timeline: a session's turns, or a video's segments, fetched when first opened --------------------
  document.addEventListener("toggle", async (ev) => {
    const d = ev.target;
    if (!(d instanceof HTMLDetailsElement) || !d.open || !d.dataset.src || d.dataset.loaded) return;
    d.dataset.loaded = "1";
    const box = d.querySelector(".lazy") || d;
    box.replaceChildren(h("p", { role: "status" }, "Loading…"));
    try {
      box.replaceChildren(...await fragment(d.dataset.src));
    } catch (err) {
      box.replaceChildren(h("p", { class: "error" }, `Could not load: ${err.message}`));
      delete d.dataset.loaded;
    }
  }, true);

  // -- upload: one request per file with its progress, then the ingest job polled ---------------------
  function send(form, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (_) { body = { detail: xhr.statusText }; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body); else reject(new Error(body.detail || `HTTP ${xhr.status}`));
      };
      xhr.onerror = () => reject(new Error("the connection failed"));
      const data = new FormData();
      data.append("csrf", csrf());
      data.append("file", file, file.name);
      xhr.send(data);
    });
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function reportOf(job) {
    const title = job.state === "done" ? "Ingested" : "Ingest stopped";
    const rows = [];
    for (const [f, n] of Object.entries(job.report.added)) {
      const note = job.report.notes[f] ? ` (${job.report.notes[f]})` : "";
      rows.push(h("li", { class: "added" }, h("strong", {}, f), `: added ${n} item${n === 1 ? "" : "s"}${note}`));
    }
    for (const [f, why] of Object.entries(job.report.skipped)) rows.push(h("li", { class: "skipped" }, h("strong", {}, f), `: skipped, ${why}`));
    for (const [f, why] of Object.entries(job.report.failed)) rows.push(h("li", { class: "failed" }, h("strong", {}, f), `: failed, ${why}`));
    return h("section", { class: `report state-${job.state}`, "aria-label": "Ingest report" }, h("h3", {}, title),
      job.error ? h("p", { class: "error", role: "alert" }, job.error) : null, h("ul", { class: "outcomes" }, rows));
  }

  function upload(form) {
    const box = document.getElementById("upload-progress"), status = document.getElementById("upload-status");
    const bar = document.getElementById("upload-bar"), reports = document.getElementById("upload-report");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const input = form.querySelector('input[type="file"]');
      const files = [...input.files];
      if (!files.length) return;
      const button = form.querySelector("button");
      button.disabled = true;
      box.hidden = false;
      for (const [n, file] of files.entries()) {
        const of = files.length > 1 ? ` (${n + 1} of ${files.length})` : "";
        try {
          status.textContent = `Uploading ${file.name}${of}…`;
          bar.value = 0;
          const started = await send(form, file, (p) => { bar.value = p; status.textContent = `Uploading ${file.name}${of}: ${Math.round(p * 100)} %`; });
          let job;
          for (;;) {
            const res = await fetch(started.status, { headers: { Accept: "application/json" }, credentials: "same-origin" });
            if (!res.ok) throw new Error(await errorText(res));
            job = await res.json();
            bar.value = job.fraction;
            status.textContent = `Remembering ${file.name}${of}: ${Math.round(job.fraction * 100)} %`;
            if (job.state === "done" || job.state === "failed") break;
            await sleep(400);
          }
          reports.prepend(reportOf(job));
        } catch (err) {
          reports.prepend(h("p", { class: "error", role: "alert" }, `${file.name}: ${err.message}`));
        }
      }
      status.textContent = "Done.";
      bar.value = 1;
      button.disabled = false;
      input.value = "";
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-live]").forEach(liveSearch);
    document.querySelectorAll("form[data-ask]").forEach(ask);
    document.querySelectorAll("form[data-upload]").forEach(upload);
    const close = document.getElementById("player-close");
    if (close) close.addEventListener("click", closePlayer);
  });

  window.omnimemUI = { h, csrf, fragment, play, clock, errorText };
})();
