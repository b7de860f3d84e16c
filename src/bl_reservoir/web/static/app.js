// BL@Scale pages: hits filtering and sorting, live campaigns (server-sent events), the submit form.
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

// ---- hits table of one result: filter form + sortable headers, through the JSON API
function setupHits(form) {
  const table = form.nextElementSibling;
  const state = { sort: table.dataset.sort || null, descending: table.dataset.descending === "1" };
  const columns = Array.from(table.querySelectorAll("th")).map((th) => th.dataset.column);
  const count = form.querySelector(".count");

  function markSorted() {
    table.querySelectorAll("th").forEach((th) => {
      th.classList.toggle("sorted-asc", th.dataset.column === state.sort && !state.descending);
      th.classList.toggle("sorted-desc", th.dataset.column === state.sort && state.descending);
    });
  }

  async function load() {
    const params = new URLSearchParams();
    for (const input of form.querySelectorAll("input")) if (input.value !== "") params.set(input.name, input.value);
    if (state.sort) params.set("sort", state.sort);
    if (state.descending) params.set("descending", "true");
    params.set("limit", "500");
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
    count.textContent = page.items.length + " of " + page.total + " matching (" + page.n_hits + " hits)";
    markSorted();
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  form.addEventListener("reset", () => setTimeout(load, 0));
  table.querySelectorAll("th.sortable").forEach((th) => th.addEventListener("click", () => {
    state.descending = state.sort === th.dataset.column ? !state.descending : false;
    state.sort = th.dataset.column;
    load();
  }));
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

function setupCampaign(root) {
  const jobsBody = () => root.querySelector("#jobs").tBodies[0];
  listen(root.dataset.stream, (c) => {
    root.querySelector("#progress").value = c.progress.percent;
    root.querySelector(".pct").textContent = c.progress.percent + "%";
    root.querySelector(".ended").textContent = c.progress.ended;
    root.querySelector(".state").textContent = c.state;
    const counts = root.querySelector(".counts"); counts.replaceChildren(countTags(c.counts));
    const body = el("tbody");
    for (const j of c.jobs) {
      const tr = el("tr", null, { "data-id": j.id });
      tr.append(el("td", j.seq), el("td", j.input_uri), el("td", j.state, { class: "state " + j.state }), el("td", j.attempts),
        el("td", j.worker), el("td", j.started), el("td", j.finished),
        el("td", j.wall_seconds === null ? "" : j.wall_seconds.toFixed(1), { class: "num" }),
        el("td", j.n_hits, { class: "num" }), el("td", j.error, { class: "error" }));
      const log = el("td"); log.appendChild(el("button", "log", { type: "button", class: "log", "data-job": j.id }));
      tr.appendChild(log);
      body.appendChild(tr);
    }
    jobsBody().replaceWith(body);
  }, root.querySelector(".live"));
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
});
