// jobpool's dashboard (doc/DASHBOARD.md). Plain JavaScript, nothing loaded from
// outside the daemon: /status for the queues and workers, /api/series for the chart,
// /api/dead, /api/job, the events as Server-Sent Events from /api/events, and the
// actions by POST with the token (X-Jobpool-Token) when the daemon allows them.
// The chart is Debian's dygraphs when the daemon serves it, else a small SVG one.
// Text from the daemon is always set as text (textContent), never as HTML.
"use strict";

const EVENTS_MAX = 200;		// rows kept in the event list
const POLL_MS = 2000;
const DEAD_MS = 5000;

let info = { actions: false, chart: null, interval: 2 };
let token = sessionStorage.getItem("jobpool-token") || "";
let series = null;
let chart = null;		// { tput, lat } of dygraphs, or null for SVG
let eventsSeen = 0;

// ----- small helpers -----

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
	const e = document.createElement(tag);
	if (text !== undefined && text !== null) e.textContent = String(text);
	if (cls) e.className = cls;
	return e;
}

function row(cells) {
	const tr = document.createElement("tr");
	for (const c of cells) {
		if (c instanceof Node) {
			const td = document.createElement("td");
			td.appendChild(c);
			tr.appendChild(td);
		} else if (Array.isArray(c)) {
			tr.appendChild(el("td", c[0], c[1]));
		} else
			tr.appendChild(el("td", c));
	}
	return tr;
}

function replaceRows(tbody, rows) {
	tbody.replaceChildren(...rows);
}

// Seconds as a person reads them.
function dur(s) {
	if (s === null || s === undefined) return "";
	if (s === 0) return "0";
	if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
	if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms";
	if (s < 120) return s.toFixed(1) + " s";
	if (s < 7200) return (s / 60).toFixed(1) + " min";
	return (s / 3600).toFixed(1) + " h";
}

function bytes(n) {
	if (n < 1024) return n + " B";
	if (n < 1048576) return (n / 1024).toFixed(0) + " KiB";
	return (n / 1048576).toFixed(1) + " MiB";
}

function rate(r) { return r >= 100 ? r.toFixed(0) : r.toFixed(1); }

function message(text, bad) {
	const m = $("message");
	m.textContent = text;
	m.className = bad ? "bad" : "";
}

async function getJSON(path) {
	const r = await fetch(path, { cache: "no-store" });
	if (!r.ok) {
		let why = r.status + " " + r.statusText;
		try { why = (await r.json()).error || why; } catch (e) { /* not JSON */ }
		throw new Error(path + ": " + why);
	}
	return r.json();
}

// ----- queues and workers (/status) -----

function showStatus(st) {
	const d = st.daemon;
	$("daemon").textContent = "jobpoold " + d.version + ", pid " + d.pid + ", up " +
	    dur(d.uptime_seconds) + ", " + d.connections + " clients" +
	    (d.stopping ? ", stopping" : "");
	replaceRows($("queues").tBodies[0], st.queues.map(q => {
		const tr = row([
			q.name, [q.state, "state-" + q.state], [q.workers, "num"],
			[q.queued + q.delayed + q.retry_wait, "num"], [q.running, "num"],
			[q.dead, q.dead > 0 ? "num bad" : "num"],
			[rate(q.throughput["1m"]), "num"], [rate(q.throughput["5m"]), "num opt"],
			[rate(q.throughput["15m"]), "num opt"],
			[dur(q.wait.p50), "num"], [dur(q.wait.p99), "num"],
			[dur(q.run.p50), "num"], [dur(q.run.p99), "num"],
			[dur(q.oldest_wait), "num"],
			info.actions ? queueButton(q) : ""]);
		tr.dataset.queue = q.name;
		return tr;
	}));
	const sel = $("chart-queue");
	const have = new Set([...sel.options].map(o => o.value));
	for (const q of st.queues)
		if (!have.has(q.name)) sel.appendChild(new Option(q.name, q.name));
	replaceRows($("workers").tBodies[0], st.workers.map(w => row([
		w.queue, [w.slot, "num"], [w.pid, "num"], [w.state, "state-" + w.state],
		[w.job === null ? "" : w.job, "num"], [w.job === null ? "" : dur(w.age), "num"],
		[bytes(w.rss_bytes), "num"], [w.jobs, "num opt"]])));
}

// ----- the chart -----

// The points of one queue, or of all (throughput summed, p99 the largest).
function chartPoints() {
	if (!series) return [];
	const want = $("chart-queue").value;
	const byT = new Map();
	for (const q of series.queues) {
		if (want && q.name !== want) continue;
		for (const [t, tput, wait, run] of q.points) {
			const p = byT.get(t) || [t, 0, 0, 0];
			p[1] += tput;
			p[2] = Math.max(p[2], wait);
			p[3] = Math.max(p[3], run);
			byT.set(t, p);
		}
	}
	return [...byT.values()].sort((a, b) => a[0] - b[0]);
}

function drawDygraphs(pts) {
	const tput = pts.map(p => [new Date(p[0] * 1000), p[1]]);
	const lat = pts.map(p => [new Date(p[0] * 1000), p[2] * 1000, p[3] * 1000]);
	if (tput.length === 0) {
		tput.push([new Date(), 0]);
		lat.push([new Date(), 0, 0]);
	}
	if (!chart) {
		// The legends above the plots, not over them.
		const opts = { legend: "always", labelsKMB: true, height: 150 };
		chart = {
			tput: new Dygraph($("chart-tput"), tput, Object.assign({ labels: ["time",
			    "jobs/s"], labelsDiv: $("chart-tput-labels") }, opts)),
			lat: new Dygraph($("chart-lat"), lat, Object.assign({ labels: ["time",
			    "wait p99 (ms)", "run p99 (ms)"], labelsDiv: $("chart-lat-labels") }, opts)),
		};
	} else {
		chart.tput.updateOptions({ file: tput });
		chart.lat.updateOptions({ file: lat });
	}
}

// A hand-written SVG chart: lines over the last minutes, the largest value on top.
function drawSVG(box, pts, lines, unit) {
	const NS = "http://www.w3.org/2000/svg";
	const W = 600, H = 160, L = 48, B = 18;
	const svg = document.createElementNS(NS, "svg");
	svg.setAttribute("viewBox", "0 0 " + W + " " + H);
	svg.setAttribute("class", "svgchart");
	let max = 0;
	for (const p of pts) for (const l of lines) max = Math.max(max, l.get(p));
	if (max === 0) max = 1;
	const t0 = pts.length ? pts[0][0] : 0, t1 = pts.length ? pts[pts.length - 1][0] : 1;
	const x = t => L + (W - L - 4) * (t1 > t0 ? (t - t0) / (t1 - t0) : 1);
	const y = v => 4 + (H - B - 8) * (1 - v / max);
	const axis = document.createElementNS(NS, "path");
	axis.setAttribute("d", "M" + L + " 4 V" + (H - B) + " H" + (W - 4));
	axis.setAttribute("class", "axis");
	svg.appendChild(axis);
	const label = (tx, ty, s, anchor) => {
		const t = document.createElementNS(NS, "text");
		t.setAttribute("x", tx);
		t.setAttribute("y", ty);
		t.setAttribute("text-anchor", anchor);
		t.textContent = s;
		svg.appendChild(t);
		return t;
	};
	label(L - 4, 12, (max >= 100 ? max.toFixed(0) : max.toPrecision(2)) + unit, "end");
	label(L - 4, H - B, "0", "end");
	if (pts.length)
		label(W - 4, H - 4, new Date(t1 * 1000).toLocaleTimeString(), "end");
	lines.forEach((l, i) => {
		if (pts.length === 0) return;
		const path = document.createElementNS(NS, "polyline");
		path.setAttribute("points", pts.map(p => x(p[0]).toFixed(1) + "," +
		    y(l.get(p)).toFixed(1)).join(" "));
		path.setAttribute("class", "line line" + i);
		svg.appendChild(path);
		label(L + 8 + i * 140, H - 4, l.name, "start").setAttribute("class", "legend line" + i);
	});
	box.replaceChildren(svg);
}

function drawChart() {
	const pts = chartPoints();
	if (document.body.dataset.chart === "dygraphs")
		drawDygraphs(pts);
	else {
		drawSVG($("chart-tput"), pts, [{ name: "jobs/s", get: p => p[1] }], "/s");
		drawSVG($("chart-lat"), pts, [{ name: "wait p99", get: p => p[2] * 1000 },
		    { name: "run p99", get: p => p[3] * 1000 }], " ms");
	}
}

// Debian's dygraphs, if the daemon has it (info.chart); else the SVG chart.
function loadChart() {
	return new Promise(resolve => {
		if (info.chart !== "dygraphs") {
			document.body.dataset.chart = "svg";
			return resolve();
		}
		const css = document.createElement("link");
		css.rel = "stylesheet";
		css.href = "/javascript/dygraphs/dygraph.min.css";
		document.head.appendChild(css);
		const s = document.createElement("script");
		s.src = "/javascript/dygraphs/dygraph.min.js";
		s.onload = () => {
			document.body.dataset.chart = typeof Dygraph === "function" ? "dygraphs" : "svg";
			resolve();
		};
		s.onerror = () => { document.body.dataset.chart = "svg"; resolve(); };
		document.head.appendChild(s);
	});
}

// ----- events (Server-Sent Events) -----

function eventDetail(e) {
	const parts = [];
	if (e.pid) parts.push("pid " + e.pid);
	if (e.attempt) parts.push("attempt " + e.attempt);
	if (e.ms !== undefined) parts.push(e.ms === 0 ? "< 1 ms" : dur(e.ms / 1000));
	if (e.delay_ms !== undefined) parts.push("retry in " + dur(e.delay_ms / 1000));
	if (e.exit !== undefined) parts.push("exit " + e.exit);
	if (e.signal !== undefined) parts.push("signal " + e.signal);
	if (e.error) parts.push(e.error);
	if (e.reason) parts.push(e.reason);
	if (e.error_lost || e.reason_lost) parts.push("(text overwritten)");
	return parts.join(", ");
}

function addEvent(e) {
	const tbody = $("events").tBodies[0];
	let tr;
	if (e.type === "gap") {
		const what = e.reason === "restart" ? "the daemon restarted: events after " +
		    (e.first - 1) + " of its last run are gone" :
		    "gap: events " + e.first + " to " + e.last + " were lost (" +
		    (e.last - e.first + 1) + ")";
		tr = el("tr", null, "gap");
		const td = el("td", what);
		td.colSpan = 5;
		tr.appendChild(td);
	} else {
		const t = new Date(e.time * 1000);
		tr = row([t.toLocaleTimeString(), [e.type, "ev-" + e.type.replace(".", "-")],
		    e.queue || "", [e.job || "", "num"], eventDetail(e)]);
		if (e.job) {
			tr.classList.add("link");
			tr.addEventListener("click", () => showJob(e.job));
		}
	}
	tbody.insertBefore(tr, tbody.firstChild);
	while (tbody.rows.length > EVENTS_MAX)
		tbody.deleteRow(-1);
	eventsSeen++;
	$("events-count").textContent = eventsSeen + " seen";
}

// The browser reconnects on its own, sending Last-Event-ID (epoch:seq): the daemon
// resumes after it, or says what was lost.
function followEvents() {
	const es = new EventSource("/api/events");
	es.onopen = () => { $("live").textContent = "live"; $("live").className = "badge ok"; };
	es.onerror = () => { $("live").textContent = "reconnecting"; $("live").className = "badge bad"; };
	es.onmessage = m => {
		try { addEvent(JSON.parse(m.data)); } catch (err) { message("event: " + err.message, true); }
	};
}

// ----- dead jobs, one job, actions -----

// POST an action: the reply's body, or null after saying why not (label: what it is on).
async function post(what, query, label) {
	if (!token) {
		message("an action needs the token: " + (info.token_file || "see jobpool.conf"), true);
		$("token").focus();
		return null;
	}
	const r = await fetch("/api/" + what + "?" + query, {
		method: "POST", headers: { "X-Jobpool-Token": token }, cache: "no-store" });
	let body = {};
	try { body = await r.json(); } catch (e) { /* no body */ }
	if (r.ok)
		return body;
	message(label + ": " + (body.error || r.status + " " + r.statusText), true);
	return null;
}

async function act(what, id) {
	const body = await post(what, "id=" + encodeURIComponent(id), "job " + id);
	if (body) message("job " + id + ": " + body.state);
	refreshDead();
	if ($("job").dataset.id === String(id)) showJob(id);
}

// Pause or resume a queue, then show the queues as they are now.
async function actQueue(what, name) {
	const body = await post(what, "queue=" + encodeURIComponent(name), "queue " + name);
	if (body) message("queue " + name + ": " + (body.paused ? "paused" : "resumed"));
	refresh();
}

function queueButton(q) {
	const what = q.paused ? "resume" : "pause";
	const b = el("button", q.paused ? "Resume" : "Pause", "action " + what);
	b.type = "button";
	b.dataset.queue = q.name;
	b.addEventListener("click", ev => { ev.stopPropagation(); actQueue(what, q.name); });
	return b;
}

function actionButton(what, id, label) {
	const b = el("button", label, "action " + what);
	b.type = "button";
	b.dataset.id = id;
	b.addEventListener("click", ev => { ev.stopPropagation(); act(what, id); });
	return b;
}

async function refreshDead() {
	let d;
	try { d = await getJSON("/api/dead"); } catch (e) { return message(e.message, true); }
	$("dead-count").textContent = d.total > d.dead.length ?
	    d.dead.length + " newest of " + d.total : String(d.total);
	replaceRows($("dead").tBodies[0], d.dead.slice().reverse().map(j => {
		const tr = row([[j.id, "num"], j.queue, [j.attempts, "num"], j.status,
		    [dur(j.age), "num"], [j.error, "error"],
		    info.actions ? actionButton("retry", j.id, "Retry") : ""]);
		tr.classList.add("link");
		tr.dataset.id = j.id;
		tr.addEventListener("click", () => showJob(j.id));
		return tr;
	}));
}

async function showJob(id) {
	$("job-id").value = id;
	const box = $("job");
	box.dataset.id = String(id);
	let j;
	try { j = await getJSON("/api/job?id=" + encodeURIComponent(id)); } catch (e) {
		box.replaceChildren(el("p", e.message, "bad"));
		return;
	}
	const head = el("p", "job " + j.id + " in " + j.queue + ": " + j.state +
	    (j.cancelling ? " (cancelling)" : "") + ", attempt " + j.attempts + " of " +
	    j.max_attempts + ", priority " + j.prio);
	const parts = [head];
	if (info.actions && j.state === "dead")
		parts.push(actionButton("retry", j.id, "Retry"));
	if (info.actions && ["queued", "delayed", "running", "retry_wait"].includes(j.state))
		parts.push(actionButton("cancel", j.id, "Cancel"));
	if (j.history.length) {
		const t = el("table");
		t.appendChild(el("thead")).appendChild(row(["attempt", "worker", "outcome", "ran", "error"]));
		const tb = t.appendChild(el("tbody"));
		for (const a of j.history)
			tb.appendChild(row([a.attempt, a.worker, a.outcome, dur(a.ms / 1000), [a.error, "error"]]));
		const s = el("div", null, "scroll");
		s.appendChild(t);
		parts.push(s);
	}
	box.replaceChildren(...parts);
}

// ----- start -----

async function refresh() {
	try {
		showStatus(await getJSON("/status"));
		series = await getJSON("/api/series");
		drawChart();
	} catch (e) {
		message(e.message, true);
	}
}

async function start() {
	// The token may come in the address (#token=...), as Jupyter's: kept for this
	// tab only, and taken out of the address bar.
	const m = /[#&]token=([0-9a-f]+)/.exec(location.hash);
	if (m) {
		token = m[1];
		sessionStorage.setItem("jobpool-token", token);
		history.replaceState(null, "", location.pathname + location.search);
	}
	try { info = await getJSON("/api/info"); } catch (e) { message(e.message, true); }
	$("mode").textContent = info.actions ? (token ? "actions" : "actions: token needed") : "read-only";
	if (info.actions && !token) {
		$("token-card").hidden = false;
		$("token-file").textContent = info.token_file || "";
	}
	$("token-form").addEventListener("submit", ev => {
		ev.preventDefault();
		token = $("token").value.trim();
		sessionStorage.setItem("jobpool-token", token);
		$("token-card").hidden = true;
		$("mode").textContent = "actions";
		refreshDead();
	});
	$("job-form").addEventListener("submit", ev => {
		ev.preventDefault();
		if ($("job-id").value.trim()) showJob($("job-id").value.trim());
	});
	$("chart-queue").addEventListener("change", drawChart);
	await loadChart();
	followEvents();
	await refresh();
	await refreshDead();
	setInterval(refresh, POLL_MS);
	setInterval(refreshDead, DEAD_MS);
	document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", start);
