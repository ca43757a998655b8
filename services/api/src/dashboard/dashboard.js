// The operators' dashboard: polls /v1/admin/* with the admin key kept in sessionStorage (gone when
// the tab closes). Plain DOM, textContent only (names come from tenants), no library, no build.
'use strict';
/* global document, location, Node */

const KEY = 'berth.adminKey';
const POLL_MS = Number(new URLSearchParams(location.search).get('poll_ms')) || 2000;
const $ = (id) => document.getElementById(id);
let timer = null;

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'style') Object.assign(e.style, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};

const bytes = (n) => {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
};
const duration = (s) => {
  if (s < 0) return 'overdue';
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.floor(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
};
const nowS = () => Date.now() / 1000;

class Unauthorized extends Error {}

async function api(path) {
  const res = await fetch(path, {
    headers: { authorization: `Bearer ${sessionStorage.getItem(KEY)}` },
  });
  // The admin API answers 404 to anything but an admin key.
  if (res.status === 404 || res.status === 401) throw new Unauthorized('not an admin key');
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

function renderSummary(s) {
  const by = s.containers.by_status;
  const cards = [
    ['running', by.running ?? 0],
    ['expired (kept)', by.expired ?? 0],
    ['failed', by.failed ?? 0],
    ['creating / deleting', (by.creating ?? 0) + (by.deleting ?? 0)],
    ['memory committed', `${bytes(s.memory.committed_bytes)} / ${bytes(s.memory.host_bytes)}`],
    [
      'warm pool',
      `${s.pool.filter((p) => p.state === 'idle').reduce((n, p) => n + p.count, 0)} idle · ${bytes(s.memory.pool_committed_bytes)}`,
    ],
    ['reaper backlog', s.reaper.backlog],
    ['projects running', s.projects.length],
  ];
  $('summary').replaceChildren(
    ...cards.map(([label, n]) =>
      el(
        'div',
        { class: 'card', 'data-card': label },
        el('div', { class: 'n' }, n),
        el('div', { class: 'l' }, label),
      ),
    ),
  );
}

function memBar(c) {
  const used = c.usage?.memory_bytes ?? null;
  const pct = used === null ? 0 : Math.min(100, (100 * used) / c.memory_limit_bytes);
  const cls = pct > 90 ? 'fill full' : pct > 70 ? 'fill high' : 'fill';
  return el(
    'div',
    {
      class: 'membar',
      'data-used': used ?? '',
      'data-limit': c.memory_limit_bytes,
      title: `${pct.toFixed(1)}%`,
    },
    el('div', { class: cls, style: { width: `${pct}%` } }),
    el('span', {}, `${bytes(used)} / ${c.memory_limit}`),
  );
}

function renderContainers(list) {
  const t = nowS();
  $('live-count').textContent = `(${list.data.length}${list.has_more ? '+' : ''})`;
  $('containers').replaceChildren(
    ...list.data.map((c) =>
      el(
        'tr',
        { 'data-id': c.id, 'data-status': c.status },
        el('td', { class: 'mono' }, c.id.slice(0, 18) + '…'),
        el('td', { class: 'mono' }, c.project_id),
        el('td', {}, c.name),
        el('td', {}, el('span', { class: `pill ${c.status}` }, c.status)),
        el('td', {}, duration(t - c.created_at)),
        el('td', {}, c.status === 'running' ? duration(c.expires_at - t) : '–'),
        el('td', {}, memBar(c)),
        el('td', {}, c.usage?.cpu_seconds == null ? '–' : `${c.usage.cpu_seconds.toFixed(1)}s`),
        el('td', {}, c.usage?.processes ?? '–'),
        el('td', {}, c.egress ? `${c.egress.allowed} / ${c.egress.denied}` : '–'),
        el(
          'td',
          {},
          c.egress ? `↑${bytes(c.egress.bytes_up)} ↓${bytes(c.egress.bytes_down)}` : '–',
        ),
      ),
    ),
  );
}

function renderEvents(list) {
  $('events').replaceChildren(
    ...list.data
      .slice(0, 30)
      .map((e) =>
        el(
          'tr',
          { 'data-kind': e.kind },
          el('td', {}, new Date(e.at * 1000).toLocaleTimeString()),
          el('td', { class: `ev-kind ${e.kind}` }, e.kind),
          el('td', { class: 'mono' }, e.container_id),
          el('td', { class: 'mono' }, e.project_id ?? '–'),
          el('td', {}, e.reason ?? ''),
        ),
      ),
  );
}

/** Running count over the last hour, walked back from now through the event log. */
function renderChart(running, events) {
  const end = nowS();
  const start = end - 3600;
  const points = [[end, running]];
  let n = running;
  for (const e of events) {
    if (e.at < start) break;
    if (e.kind === 'created') n -= 1;
    else if (e.kind === 'expired' || e.kind === 'deleted' || e.kind === 'failed') n += 1;
    else continue;
    n = Math.max(0, n);
    points.push([e.at, n]);
  }
  points.push([start, n]);
  points.reverse();
  const W = 600,
    H = 160,
    P = 24;
  const max = Math.max(1, ...points.map((p) => p[1]));
  const x = (t) => P + ((t - start) / 3600) * (W - 2 * P);
  const y = (v) => H - P - (v / max) * (H - 2 * P);
  // A step line: the count holds until the next event.
  let d = `M${x(points[0][0])},${y(points[0][1])}`;
  for (let i = 1; i < points.length; i++) d += ` H${x(points[i][0])} V${y(points[i][1])}`;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  add('line', { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: '#ccd' });
  add('line', { x1: P, y1: P, x2: P, y2: H - P, stroke: '#ccd' });
  add('path', { d, fill: 'none', stroke: '#2f6fb5', 'stroke-width': 2 });
  add('text', { x: 2, y: P + 4, 'font-size': 12, fill: '#667' }, String(max));
  add('text', { x: 2, y: H - P, 'font-size': 12, fill: '#667' }, '0');
  add('text', { x: P, y: H - 6, 'font-size': 12, fill: '#667' }, '-60 min');
  add('text', { x: W - P - 20, y: H - 6, 'font-size': 12, fill: '#667' }, 'now');
  $('chart-svg').replaceChildren(svg);
  $('chart-note').textContent = `${points.length - 2} lifecycle events in the window`;
}

async function refresh() {
  try {
    const since = Math.floor(nowS() - 3600);
    const [summary, containers, recent, hour] = await Promise.all([
      api('/v1/admin/summary'),
      api('/v1/admin/containers?limit=200&status=running'),
      api('/v1/admin/events?limit=30'),
      api(`/v1/admin/events?limit=200&since=${since}`),
    ]);
    renderSummary(summary);
    renderContainers(containers);
    renderEvents(recent);
    renderChart(summary.containers.by_status.running ?? 0, hour.data);
    $('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error instanceof Unauthorized) return signOut(error.message);
    $('status').textContent = `update failed: ${error.message}`;
  }
}

function signedIn() {
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  clearInterval(timer);
  timer = setInterval(refresh, POLL_MS);
  return refresh();
}

function signOut(message = '') {
  clearInterval(timer);
  sessionStorage.removeItem(KEY);
  $('app').hidden = true;
  $('signout').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $('status').textContent = 'signed out';
}

$('signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $('key').value.trim());
  $('key').value = '';
  void signedIn();
});
$('signout').addEventListener('click', () => signOut());
if (sessionStorage.getItem(KEY)) void signedIn();
