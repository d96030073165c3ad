// Tide's dashboard: live over the WebSocket (a ticket from the API key), long-polling
// /v1/events when the socket fails, and back to the socket when it can. Events are buffered
// and drawn a few times a second, never one DOM update per event, so 10,000 jobs/s stay cheap.

const KEY_STORAGE = "tide.apiKey";
const FLUSH_MS = 250;
const MAX_ROWS = 50;
const HISTORY_MS = 5 * 60 * 1000;
const SOCKET_RETRY_MS = 5000;
const POLL_TIMEOUT_S = 20;
const REFRESH_MS = { workers: 2000, dead: 5000, decisions: 10000, tenants: 5000, stats: 1000 };

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) || "",
  admin: false,
  mode: "offline",
  lastEventId: null,
  socket: null,
  socketRetry: null,
  polling: null,
  fresh: new Map(), // new job ids -> latest change, at most MAX_ROWS (older ones never show)
  updates: new Map(), // ids already on the page -> latest change
  rows: new Map(), // id -> {job, tr}
  history: [],
  statsChanged: false,
  flushQueued: false,
  lastDecision: null,
  timers: [],
};

class AuthError extends Error {}

const byId = (id) => document.querySelector(`[data-testid="${id}"]`);

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "–";
}

function shortId(id) {
  return id.length > 12 ? `…${id.slice(-10)}` : id;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.key) headers["X-API-Key"] = state.key;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) throw new AuthError("the API key is unknown or was revoked");
  return response;
}

async function apiJson(path, options) {
  const response = await api(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
  return body;
}

// -- connection: socket first, long poll as the fallback ----------------------------------

function setMode(mode) {
  state.mode = mode;
  const indicator = byId("connection");
  indicator.dataset.state = mode;
  indicator.textContent = {
    live: "live",
    polling: "polling (socket lost, retrying it)",
    offline: "offline",
  }[mode];
}

async function connectSocket() {
  clearTimeout(state.socketRetry);
  let ticket;
  try {
    ticket = (await apiJson("/v1/ws/ticket", { method: "POST" })).ticket;
  } catch (error) {
    if (error instanceof AuthError) return signedOut(error.message);
    return socketFailed();
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/v1/ws?ticket=${encodeURIComponent(ticket)}`);
  state.socket = socket;
  // batched `events` frames where the server has them; one that does not know the field
  // answers invalid_frame, and the page subscribes again without it
  let batch = true;
  let subscribed = false;
  const subscribe = () => {
    const frame = { op: "subscribe", jobs: "all" };
    if (state.lastEventId) frame.after = state.lastEventId;
    if (batch) frame.batch = true;
    socket.send(JSON.stringify(frame));
  };
  socket.onopen = subscribe;
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.op === "event") queueEvent(frame);
    else if (frame.op === "events") frame.events.forEach(queueEvent);
    else if (frame.op === "stats") queueStats(frame);
    else if (frame.op === "subscribed") {
      subscribed = true;
      stopPolling();
      setMode("live");
    } else if (frame.op === "gap") refreshJobs();
    else if (frame.op === "error") {
      if (!subscribed && batch && frame.code === "invalid_frame") {
        batch = false;
        subscribe();
      } else console.warn("tide socket error", frame);
    }
  };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    state.socket = null;
    socketFailed();
  };
}

function socketFailed() {
  startPolling();
  clearTimeout(state.socketRetry);
  state.socketRetry = setTimeout(connectSocket, SOCKET_RETRY_MS);
}

function startPolling() {
  if (state.polling) return;
  const controller = new AbortController();
  state.polling = controller;
  setMode("polling");
  pollEvents(controller.signal);
}

function stopPolling() {
  if (state.polling) state.polling.abort();
  state.polling = null;
}

async function pollEvents(signal) {
  while (!signal.aborted) {
    try {
      const query = new URLSearchParams({ timeout_s: String(POLL_TIMEOUT_S) });
      if (state.lastEventId) query.set("after", state.lastEventId);
      const page = await apiJson(`/v1/events?${query}`, { signal });
      if (signal.aborted) return;
      page.events.forEach(queueEvent);
      state.lastEventId = page.last_event_id;
      if (page.gap) refreshJobs();
      setMode("polling");
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof AuthError) return signedOut(error.message);
      setMode("offline");
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

// -- buffering: the socket and the poll only fill maps; a timer draws them --------------------

// "<ms>-<seq>:<index>" as numbers, to put changes in order: the socket's replay and a poll
// still in flight may both deliver, and an older change must not undo a newer one
function position(eventId) {
  const [entry, index] = eventId.split(":");
  const [ms, seq] = entry.split("-");
  return [Number(ms), Number(seq), Number(index ?? -1)];
}

function isAfter(a, b) {
  const i = a.findIndex((n, k) => n !== b[k]);
  return i >= 0 && a[i] > b[i];
}

function queueEvent(event) {
  const job = event.job;
  const pos = event.event_id ? position(event.event_id) : null; // null: read, not a change
  const known = state.updates.get(job.id) || state.fresh.get(job.id) || state.rows.get(job.id)?.job;
  if (known && (!pos || (known.pos && !isAfter(pos, known.pos)))) return;
  if (pos && (!state.lastEventId || isAfter(pos, position(state.lastEventId)))) {
    state.lastEventId = event.event_id;
  }
  const change = { updated: Date.now(), ...job, pos };
  if (state.rows.has(job.id)) {
    state.updates.set(job.id, { ...state.updates.get(job.id), ...change });
    return;
  }
  state.fresh.set(job.id, { ...state.fresh.get(job.id), ...change });
  if (state.fresh.size > MAX_ROWS) state.fresh.delete(state.fresh.keys().next().value);
}

function queueStats(stats) {
  state.history.push({ at: Date.now(), ...stats });
  const cutoff = Date.now() - HISTORY_MS;
  while (state.history.length && state.history[0].at < cutoff) state.history.shift();
  state.statsChanged = true;
  const decision = stats.scaler && stats.scaler.decision;
  if (decision && decision.id !== state.lastDecision) {
    state.lastDecision = decision.id;
    refreshDecisions();
  }
}

function scheduleFlush() {
  if (state.flushQueued) return;
  state.flushQueued = true;
  requestAnimationFrame(() => {
    state.flushQueued = false;
    drawJobs();
    if (state.statsChanged) {
      state.statsChanged = false;
      drawCounters();
      drawCharts();
    }
  });
}

// -- latest jobs ---------------------------------------------------------------------------

function jobRow(job) {
  const tr = el("tr", null, { "data-testid": "job-row", "data-job-id": job.id });
  tr.append(el("td", shortId(job.id), { title: job.id }), el("td"), el("td"), el("td"), el("td"));
  tr.addEventListener("click", () => showJob(job.id));
  return tr;
}

function fillRow(tr, job) {
  const [, status, queue, tenant, updated] = tr.children;
  tr.dataset.status = job.status;
  status.textContent = job.status;
  status.className = `status ${job.status}`;
  queue.textContent = job.queue;
  tenant.textContent = job.tenant;
  updated.textContent = new Date(job.updated || Date.now()).toLocaleTimeString();
}

function drawJobs() {
  const body = byId("jobs-body");
  for (const [id, change] of state.updates) {
    const row = state.rows.get(id);
    if (!row) continue;
    row.job = { ...row.job, ...change };
    fillRow(row.tr, row.job);
  }
  state.updates.clear();
  const fresh = [...state.fresh.values()];
  state.fresh.clear();
  for (const job of fresh) {
    if (state.rows.has(job.id)) continue;
    const tr = jobRow(job);
    fillRow(tr, job);
    state.rows.set(job.id, { job, tr });
    body.prepend(tr); // the fresh map is oldest first: the newest ends on top
  }
  while (state.rows.size > MAX_ROWS) {
    const last = body.lastChild;
    state.rows.delete(last.dataset.jobId);
    last.remove();
  }
}

async function refreshJobs() {
  try {
    const page = await apiJson(`/v1/jobs?limit=${MAX_ROWS}`);
    for (const job of page.jobs.reverse()) {
      const change = { id: job.id, status: job.status, queue: job.queue, tenant: job.tenant };
      const when = Date.parse(job.finished_at || job.started_at || job.created_at);
      queueEvent({ event_id: null, job: { ...change, updated: when } });
    }
    scheduleFlush();
  } catch (error) {
    if (error instanceof AuthError) signedOut(error.message);
  }
}

async function showJob(id) {
  const panel = byId("panel-job-detail");
  panel.hidden = false;
  byId("detail-id").textContent = id;
  const fields = byId("detail-fields");
  fields.replaceChildren(el("dd", "loading…"));
  try {
    const job = await apiJson(`/v1/jobs/${encodeURIComponent(id)}`);
    const rows = [
      ["type", job.type], ["status", job.status], ["queue", job.queue], ["tenant", job.tenant],
      ["attempts", `${job.attempts} of ${job.max_attempts}`], ["worker", job.worker || "–"],
      ["created", job.created_at], ["run at", job.run_at || "–"],
      ["started", job.started_at || "–"], ["finished", job.finished_at || "–"],
    ];
    fields.replaceChildren(...rows.flatMap(([name, value]) => [el("dt", name), el("dd", value)]));
    fields.dataset.status = job.status;
    byId("detail-payload").textContent = JSON.stringify(job.payload, null, 2);
    byId("detail-result").textContent = JSON.stringify(job.result, null, 2);
    byId("detail-error").textContent = job.error ? `${job.error.type}: ${job.error.message}` : "–";
  } catch (error) {
    fields.replaceChildren(el("dd", error.message, { class: "error" }));
  }
}

// -- counters and charts ---------------------------------------------------------------------

function perMinute(status) {
  const last = state.history[state.history.length - 1];
  const first = state.history.find((s) => s.at >= last.at - 60000);
  const span = (last.at - first.at) / 1000;
  if (!last.totals || span < 2) return null;
  const ended = (last.totals[status] || 0) - (first.totals[status] || 0);
  return Math.max(0, Math.round((ended / span) * 60));
}

function drawCounters() {
  const stats = state.history[state.history.length - 1];
  if (!stats) return;
  const set = (id, value) => { byId(id).textContent = value === null ? "…" : String(value); };
  set("counter-waiting", stats.waiting);
  set("counter-running", stats.running);
  set("counter-scheduled", stats.scheduled);
  set("counter-dead", stats.dead);
  set("counter-workers", stats.workers);
  set("counter-rpm", stats.rpm ? `${stats.rpm.used} / ${stats.rpm.limit}` : "off");
  set("counter-succeeded-per-min", perMinute("succeeded"));
  set("counter-failed-per-min", perMinute("failed"));
}

const COLORS = ["#2f7ed8", "#e4572e", "#29a36a", "#8d6cc4"];

function drawChart(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const now = Date.now();
  const points = state.history;
  const top = Math.max(1, ...series.flatMap((s) => points.map(s.value).filter(Number.isFinite)));
  const pad = { left: 34, right: 6, top: 16, bottom: 14 };
  const x = (at) => pad.left + ((at - (now - HISTORY_MS)) / HISTORY_MS) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
  ctx.strokeStyle = "#ccc";
  ctx.fillStyle = "#666";
  ctx.font = "10px sans-serif";
  ctx.beginPath();
  ctx.moveTo(pad.left, pad.top);
  ctx.lineTo(pad.left, height - pad.bottom);
  ctx.lineTo(width - pad.right, height - pad.bottom);
  ctx.stroke();
  ctx.fillText(String(Math.round(top)), 2, pad.top + 4);
  ctx.fillText("0", 2, height - pad.bottom);
  ctx.fillText("−5 min", pad.left, height - 2);
  series.forEach((s, i) => {
    ctx.strokeStyle = ctx.fillStyle = COLORS[i % COLORS.length];
    ctx.fillText(s.label, pad.left + 6 + i * 80, 10);
    ctx.beginPath();
    let drawing = false;
    for (const point of points) {
      const v = s.value(point);
      if (!Number.isFinite(v)) { drawing = false; continue; }
      if (drawing) ctx.lineTo(x(point.at), y(v));
      else ctx.moveTo(x(point.at), y(v));
      drawing = true;
    }
    ctx.stroke();
  });
}

function drawCharts() {
  const desired = (s) => (s.scaler && Number.isFinite(s.scaler.desired) ? s.scaler.desired : NaN);
  drawChart(byId("chart-depth"), [
    { label: "waiting", value: (s) => s.waiting },
    { label: "running", value: (s) => s.running },
    { label: "scheduled", value: (s) => s.scheduled },
  ]);
  drawChart(byId("chart-throughput"), [{ label: "ended/min", value: (s) => s.finished_per_min }]);
  drawChart(byId("chart-workers"), [
    { label: "live", value: (s) => s.workers },
    { label: "desired", value: desired },
  ]);
}

// -- the slower lists: fetched on a timer, small and bounded ----------------------------------

async function refresh(what, fn) {
  try {
    await fn();
  } catch (error) {
    if (error instanceof AuthError) signedOut(error.message);
    else console.warn(`tide: refreshing ${what} failed`, error);
  }
}

function refreshStats() {
  if (state.mode === "live") return;
  refresh("stats", async () => {
    const stats = await apiJson("/v1/stats");
    queueStats({ op: "stats", ...stats });
    scheduleFlush();
  });
}

function refreshWorkers() {
  refresh("workers", async () => {
    const { workers } = await apiJson("/v1/workers");
    byId("workers-body").replaceChildren(...workers.map((w) => {
      const tr = el("tr", null, { "data-testid": "worker-row", "data-worker-id": w.id });
      tr.append(
        el("td", w.host ? `${w.host} (pid ${w.pid})` : w.id, { title: w.id }),
        el("td", (w.queues || []).join(", ")),
        el("td", `${w.busy ?? "?"} / ${w.concurrency ?? "?"}`),
        el("td", w.processed ?? "–"),
        el("td", `${w.heartbeat_age_s.toFixed(1)} s ago`, { "data-testid": "worker-heartbeat" }),
      );
      return tr;
    }));
  });
}

function refreshDead() {
  refresh("dead letters", async () => {
    const { dead_letters: letters } = await apiJson("/v1/dead-letters?limit=20");
    byId("dead-body").replaceChildren(...letters.map(deadRow));
    byId("dead-empty").hidden = letters.length > 0;
  });
}

function deadRow(letter) {
  const tr = el("tr", null, { "data-testid": "dead-row", "data-job-id": letter.job_id });
  const error = letter.error && letter.error.message ? letter.error.message : JSON.stringify(letter.error);
  const button = el("button", "retry", { type: "button", "data-testid": "dead-retry" });
  const status = letter.job ? letter.job.status : "expired";
  button.disabled = !["failed", "cancelled"].includes(status);
  if (button.disabled) button.title = `the job is ${status} now`;
  button.addEventListener("click", () => retry(letter.job_id, button));
  const id = el("td", shortId(letter.job_id), { title: letter.job_id, class: "link" });
  id.addEventListener("click", () => showJob(letter.job_id));
  tr.append(id, el("td", letter.queue), el("td", error), el("td", letter.attempts), el("td", time(letter.at)), el("td"));
  tr.lastChild.append(button);
  return tr;
}

async function retry(id, button) {
  button.disabled = true;
  try {
    await apiJson(`/v1/jobs/${encodeURIComponent(id)}/retry`, { method: "POST" });
    byId("dead-message").textContent = `${id} runs again.`;
  } catch (error) {
    byId("dead-message").textContent = `retry of ${id} failed: ${error.message}`;
    if (error instanceof AuthError) signedOut(error.message);
  }
  refreshDead();
}

function refreshDecisions() {
  refresh("scaler decisions", async () => {
    const { decisions } = await apiJson("/v1/scaler/decisions?limit=20");
    byId("decisions-list").replaceChildren(...decisions.map((d) => {
      const li = el("li", null, { "data-testid": "decision-row", class: d.action || "" });
      li.append(
        el("span", time(d.at), { class: "when" }),
        el("strong", `${d.action ?? "?"} ${d.current ?? "?"} → ${d.desired ?? "?"}`),
        el("span", d.reason || "", { class: "reason" }),
      );
      return li;
    }));
    byId("decisions-empty").hidden = decisions.length > 0;
  });
}

function refreshTenants() {
  if (!state.admin) return;
  refresh("tenants", async () => {
    const { tenants, truncated } = await apiJson("/v1/tenants");
    byId("tenants-body").replaceChildren(...tenants.map((t) => {
      const tr = el("tr", null, { "data-testid": "tenant-row", "data-tenant": t.tenant });
      tr.append(
        el("td", t.tenant),
        el("td", `${t.active} / ${t.max_active_limit}`),
        el("td", `${t.submitted_last_minute} / ${t.rpm_limit}`),
        el("td", t.keys),
      );
      return tr;
    }));
    byId("tenants-message").textContent = truncated ? "More tenants than shown." : "";
  });
}

// -- signing in and out ----------------------------------------------------------------------

function signedOut(message) {
  for (const timer of state.timers) clearInterval(timer);
  state.timers = [];
  clearTimeout(state.socketRetry);
  stopPolling();
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close();
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = "";
  setMode("offline");
  byId("dashboard").hidden = true;
  byId("logout").hidden = true;
  byId("login").hidden = false;
  byId("login-error").textContent = message || "";
  byId("login-key").focus();
}

async function openDashboard() {
  try {
    const response = await api("/v1/tenants");
    state.admin = response.ok;
    await response.body?.cancel();
  } catch (error) {
    if (error instanceof AuthError) return signedOut(state.key ? error.message : "");
    setMode("offline");
    byId("login-error").textContent = `the API does not answer (${error.message}); retrying`;
    setTimeout(openDashboard, 3000);
    return;
  }
  byId("login").hidden = true;
  byId("login-error").textContent = "";
  byId("dashboard").hidden = false;
  byId("logout").hidden = !state.key;
  byId("who").textContent = state.key ? (state.admin ? "admin key" : "tenant key") : "auth off";
  byId("tenants-message").textContent = state.admin ? "" : "Per-tenant usage is for admin keys.";
  refreshJobs();
  refreshWorkers();
  refreshDead();
  refreshDecisions();
  refreshTenants();
  state.timers = [
    setInterval(scheduleFlush, FLUSH_MS),
    setInterval(refreshStats, REFRESH_MS.stats),
    setInterval(refreshWorkers, REFRESH_MS.workers),
    setInterval(refreshDead, REFRESH_MS.dead),
    setInterval(refreshDecisions, REFRESH_MS.decisions),
    setInterval(refreshTenants, REFRESH_MS.tenants),
  ];
  connectSocket();
}

byId("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = byId("login-key").value.trim();
  sessionStorage.setItem(KEY_STORAGE, state.key);
  openDashboard();
});
byId("logout").addEventListener("click", () => signedOut(""));
byId("detail-close").addEventListener("click", () => { byId("panel-job-detail").hidden = true; });

openDashboard();
