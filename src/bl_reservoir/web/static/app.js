// BL@Scale pages: hits filtering, sorting and paging, live campaigns (server-sent events) and their buttons,
// the workers' table refreshed, the submit form.
// Plain JavaScript, no build step; every value put in the page goes through textContent.
"use strict";

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" && !Number.isInteger(value)) return String(parseFloat(value.toPrecision(10)));
  return String(value);
}

// ---- hits table of one result: filter form, sortable headers and pages of rows, through the JSON API;
// the CSV link follows the filters and the order
function setupHits(form) {
  const section = form.closest("section");
  const table = section.querySelector("table.hits");
  const pager = section.querySelector(".hits-pager");
  const csv = section.querySelector("a.csv");
  const limit = Number(form.dataset.limit || 100);
  const state = { sort: table.dataset.sort || null, descending: table.dataset.descending === "1", offset: 0 };
  const columns = Array.from(table.querySelectorAll("th")).map((th) => th.dataset.column);
  const count = form.querySelector(".count");

  function markSorted() {
    table.querySelectorAll("th").forEach((th) => {
      th.classList.toggle("sorted-asc", th.dataset.column === state.sort && !state.descending);
      th.classList.toggle("sorted-desc", th.dataset.column === state.sort && state.descending);
    });
  }

  function query() {
    const params = new URLSearchParams();
    for (const input of form.querySelectorAll("input")) if (input.value !== "") params.set(input.name, input.value);
    if (state.sort) params.set("sort", state.sort);
    if (state.descending) params.set("descending", "true");
    return params;
  }

  async function load() {
    const params = query();
    if (csv) csv.href = csv.dataset.href + (params.toString() ? "?" + params.toString() : "");
    params.set("limit", String(limit));
    params.set("offset", String(state.offset));
    count.textContent = "loading…";
    const response = await fetch(form.dataset.api + "?" + params.toString(), { credentials: "same-origin" });
    if (!response.ok) { count.textContent = "error " + response.status; return; }
    const page = await response.json();
    const body = el("tbody");
    for (const row of page.items) {
      const tr = el("tr");
      for (const c of columns) {
        const td = el("td");
        if (c === "i") td.appendChild(el("a", row.i, { href: form.dataset.page + row.i }));
        else td.textContent = fmt(row[c]);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    table.replaceChild(body, table.tBodies[0]);
    count.textContent = page.total + " of " + page.n_hits + " hits match";
    const first = page.total ? page.offset + 1 : 0;
    pager.querySelector(".range").textContent = "hits " + first + "–" + (page.offset + page.items.length) + " of " + page.total;
    pager.querySelector(".prev").disabled = page.offset === 0;
    pager.querySelector(".next").disabled = page.offset + page.items.length >= page.total;
    markSorted();
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); state.offset = 0; load(); });
  form.addEventListener("reset", () => { state.offset = 0; setTimeout(load, 0); });
  pager.querySelector(".prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - limit); load(); });
  pager.querySelector(".next").addEventListener("click", () => { state.offset += limit; load(); });
  table.querySelectorAll("th.sortable").forEach((th) => th.addEventListener("click", () => {
    state.descending = state.sort === th.dataset.column ? !state.descending : false;
    state.sort = th.dataset.column;
    state.offset = 0;
    load();
  }));
  if (csv) csv.href = csv.dataset.href + (query().toString() ? "?" + query().toString() : "");
  markSorted();
}

// ---- campaigns: a live stream of snapshots
function listen(url, onSnapshot, status) {
  const source = new EventSource(url);
  source.onmessage = (e) => onSnapshot(JSON.parse(e.data));
  source.addEventListener("end", (e) => { onSnapshot(JSON.parse(e.data)); source.close(); if (status) status.textContent = "· finished"; });
  source.onopen = () => { if (status) status.textContent = "· live"; };
  source.onerror = () => { if (status && source.readyState !== EventSource.CLOSED) status.textContent = "· reconnecting…"; };
  return source;
}

function countTags(counts) {
  const span = el("span");
  for (const [s, n] of Object.entries(counts)) if (n) { span.appendChild(el("span", s + " " + n, { class: "tag " + s })); span.append(" "); }
  return span;
}

function setupCampaigns(table) {
  listen(table.dataset.stream, (campaigns) => {
    const body = el("tbody");
    for (const c of campaigns) {
      const tr = el("tr", null, { "data-id": c.id });
      const link = el("td"); link.appendChild(el("a", c.id, { href: "/campaigns/" + c.id }));
      tr.append(link, el("td", c.algorithm), el("td", c.created), el("td", c.state, { class: "state" }));
      const bar = el("td"); bar.appendChild(el("progress", null, { max: "100", value: String(c.progress.percent) }));
      bar.append(" ", el("span", c.progress.percent + "%", { class: "pct" }));
      const counts = el("td", null, { class: "counts" }); counts.appendChild(countTags(c.counts));
      tr.append(bar, counts);
      body.appendChild(tr);
    }
    if (campaigns.length) table.replaceChild(body, table.tBodies[0]);
  });
}

function jobRow(j) {
  const tr = el("tr", null, { "data-id": j.id });
  tr.append(el("td", j.seq), el("td", j.input_uri, { class: "name" }), el("td", j.state, { class: "state " + j.state }),
    el("td", j.attempts), el("td", j.worker), el("td", j.started), el("td", j.finished),
    el("td", j.wall_seconds === null ? "" : j.wall_seconds.toFixed(1), { class: "num" }),
    el("td", j.n_hits, { class: "num" }), el("td", j.error, { class: "error" }));
  const log = el("td"); log.appendChild(el("button", "log", { type: "button", class: "log", "data-job": j.id }));
  tr.appendChild(log);
  return tr;
}

// one campaign: the first message holds every job shown (`full`), later ones only the jobs that changed
function setupCampaign(root) {
  const body = () => root.querySelector("#jobs").tBodies[0];
  const controls = root.querySelector("#controls");
  const loggedIn = controls && controls.dataset.enabled === "1";
  function showControls(c) {
    if (!controls || !loggedIn) return;
    controls.querySelector("[data-action=cancel]").disabled = c.state !== "active";
    controls.querySelector("[data-action=retry]").disabled = !c.counts.failed;
    controls.querySelector("[data-action=resume]").disabled = !(c.counts.queued || c.counts.running);
  }
  listen(root.dataset.stream, (c) => {
    root.querySelector("#progress").value = c.progress.percent;
    root.querySelector(".pct").textContent = c.progress.percent + "%";
    root.querySelector(".ended").textContent = c.progress.ended;
    root.querySelector(".state").textContent = c.state;
    root.querySelector(".counts").replaceChildren(countTags(c.counts));
    if (c.full) {
      const fresh = el("tbody");
      for (const j of c.jobs) fresh.appendChild(jobRow(j));
      body().replaceWith(fresh);
    } else {
      const rows = new Map(Array.from(body().rows).map((tr) => [tr.dataset.id, tr]));
      for (const j of c.jobs) {
        const old = rows.get(j.id);
        if (old) old.replaceWith(jobRow(j)); else body().appendChild(jobRow(j));
      }
    }
    showControls(c);
  }, root.querySelector(".live"));
  if (controls) controls.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const message = controls.querySelector(".message");
    const action = button.dataset.action;
    if (action === "cancel" && !window.confirm("Cancel this campaign's queued and running jobs?")) return;
    button.disabled = true;
    message.textContent = action + "…";
    // the login cookie authorises this only with our header (security.require_control)
    const response = await fetch(controls.dataset.api + "/" + action, {
      method: "POST", credentials: "same-origin", headers: { "X-Requested-With": "bl-reservoir" },
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      message.textContent = action === "cancel" ? answer.cancelled + " jobs cancelled" : answer.jobs + " jobs run again";
      message.className = "message muted";
    } else {
      message.textContent = "refused (" + response.status + "): " + (typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail));
      message.className = "message error";
      button.disabled = false;
    }
  });
  root.addEventListener("click", async (e) => {
    const button = e.target.closest("button.log");
    if (!button) return;
    const response = await fetch("/api/jobs/" + encodeURIComponent(button.dataset.job), { credentials: "same-origin" });
    if (!response.ok) return;
    const job = await response.json();
    const view = root.querySelector("#log-view");
    view.hidden = false;
    view.querySelector(".job").textContent = job.id + " (" + job.input_uri + ")";
    view.querySelector(".events").textContent = job.events.map((ev) => ev.time + "  " + ev.kind + "  " + JSON.stringify(ev.payload)).join("\n");
    view.querySelector(".log").textContent = job.log === null ? "(no log.txt in the bucket for this job)"
      : (job.log || "(log.txt is empty: the algorithm printed nothing)");
  });
}

// ---- workers: the table again from /api/workers every few seconds
function gib(bytes) { return bytes === null || bytes === undefined ? "?" : (bytes / 2 ** 30).toFixed(2); }

function setupWorkers(root) {
  const every = Number(root.dataset.refreshS || 5) * 1000;
  async function refresh() {
    let view;
    try {
      const response = await fetch(root.dataset.api, { credentials: "same-origin" });
      if (!response.ok) throw new Error("error " + response.status);
      view = await response.json();
    } catch (err) {
      root.querySelector(".live").textContent = "· " + err.message + ", trying again";
      return;
    }
    const problem = root.querySelector("p.error");
    problem.hidden = !view.error; problem.textContent = view.error || "";
    root.querySelector(".n-workers").textContent = view.workers.length + (view.workers.length === 1 ? " worker" : " workers");
    const body = el("tbody");
    for (const w of view.workers) {
      const tr = el("tr");
      const name = el("td", w.name, { class: "name" }); name.append(el("br"), el("span", w.address, { class: "muted" }));
      const jobs = el("td", null, { class: "jobs" });
      for (const j of w.current_jobs) {
        const line = el("div");
        line.appendChild(j.campaign ? el("a", j.input_uri, { href: "/campaigns/" + encodeURIComponent(j.campaign) }) : el("span", j.id));
        line.append(" ", el("span", Math.round(j.cpu_percent) + "% · " + gib(j.memory_bytes) + " GiB", { class: "muted" }));
        jobs.appendChild(line);
      }
      if (!w.current_jobs.length) jobs.appendChild(el("span", w.error || "idle", { class: "muted" }));
      const tags = el("td"); for (const a of w.algorithms) { tags.appendChild(el("span", a, { class: "tag" })); tags.append(" "); }
      tr.append(name, el("td", w.nthreads, { class: "num" }), jobs,
        el("td", w.jobs_cpu_percent === null ? "?" : Math.round(w.jobs_cpu_percent), { class: "num" }),
        el("td", gib(w.jobs_memory_bytes) + " GiB", { class: "num" }),
        el("td", w.cpu_percent === null ? "" : Math.round(w.cpu_percent), { class: "num" }),
        el("td", gib(w.memory_bytes) + " of " + (w.memory_limit_bytes ? (w.memory_limit_bytes / 2 ** 30).toFixed(1) : "?") + " GiB", { class: "num" }),
        tags);
      body.appendChild(tr);
    }
    root.querySelector("#workers").tBodies[0].replaceWith(body);
    root.querySelector(".live").textContent = "· updated " + new Date().toLocaleTimeString();
  }
  setInterval(refresh, every);
}

// ---- submit form: JSON to /api/jobs with the bearer token
function setupSubmit(form) {
  const message = form.querySelector(".message");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const body = {
      algorithm: data.get("algorithm"),
      inputs: String(data.get("inputs")).split(/\r?\n/).map((s) => s.trim()).filter(Boolean),
      bucket: String(data.get("bucket") || "").trim() || null,
      parameters: String(data.get("parameters") || "").trim().split(/\s+/).filter(Boolean),
      max_attempts: Number(data.get("max_attempts") || 3),
    };
    message.textContent = "submitting…";
    const response = await fetch("/api/jobs", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + data.get("token") },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 201) { window.location.assign("/campaigns/" + answer.campaign); return; }
    const detail = typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail);
    message.textContent = "refused (" + response.status + "): " + detail;
    message.className = "message error";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.hit-filter").forEach(setupHits);
  const campaigns = document.getElementById("campaigns");
  if (campaigns) setupCampaigns(campaigns);
  const campaign = document.getElementById("campaign");
  if (campaign) setupCampaign(campaign);
  const submit = document.getElementById("submit");
  if (submit) setupSubmit(submit);
  const workers = document.getElementById("workers-view");
  if (workers) setupWorkers(workers);
});
