// The tracking page's live updates: poll the order's JSON (GET /api/v1/orders/<id>?token=...) and show
// each item's state, its failure reason, once ready its downloads, and then how its parts are being made.
// Without JavaScript the page reloads while the files are being made.
import { duration } from './units.js';

const tracking = document.getElementById('tracking');
const orderStatus = document.getElementById('order-status');
const POLL_MS = 2000;
const PRODUCTION_POLL_MS = 10000;
const FINAL_JOB_STATES = ['done', 'failed', 'cancelled'];
const state = window.__tracking = { polls: 0, status: tracking?.dataset.status };

function kilobytes(bytes) {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function showItem(item) {
  const line = tracking.querySelector(`[data-position="${item.position}"]`);
  if (!line) return;
  const stateBadge = line.querySelector('[data-role="state"]');
  stateBadge.textContent = item.label;
  stateBadge.className = `state state-${item.progress}${item.progress === 'ready' ? ' files' : ''}`;
  const reason = line.querySelector('[data-role="reason"]');
  reason.textContent = item.reason || '';
  reason.hidden = !item.reason;
  const files = line.querySelector('[data-role="files"]');
  const list = files.querySelector('ul');
  if (item.files.length && list.children.length !== item.files.length) {
    list.replaceChildren(...item.files.map((file) => {
      const entry = document.createElement('li');
      const link = document.createElement('a');
      link.href = file.url;
      link.download = file.download_name;
      link.textContent = file.download_name;
      const note = document.createElement('span');
      note.className = 'muted';
      note.textContent = ` ${file.format.toUpperCase()}, ${kilobytes(file.bytes)}`;
      entry.append(link, note);
      return entry;
    }));
  }
  files.hidden = item.files.length === 0;
  const archive = files.querySelector('[data-role="archive"]');
  if (item.archive) archive.querySelector('a').href = item.archive;
  archive.hidden = !item.archive;
  const plates = line.querySelector('[data-role="plates"]');
  if (plates) {
    plates.hidden = !item.plates;
    const materials = plates.querySelector('[data-role="plate-materials"]');
    if (materials && item.plate_materials.length) {
      materials.textContent = item.plate_materials.map((material) => material.name).join(' and ');
    }
  }
  const production = line.querySelector('[data-role="production"]');
  if (item.production.length === 0) return;  // until the parts are planned, the page shows the quoted times
  production.querySelector('ul').replaceChildren(...item.production.map((job) => {
    const entry = document.createElement('li');
    const label = document.createElement('strong');
    label.textContent = job.label;
    entry.append(`${job.part}: `, label);
    if (job.state === 'printing' && job.kind === 'fdm') entry.append(` (${Math.round(job.progress)}%)`);
    if (job.estimated_time_s) {
      const time = document.createElement('span');
      time.className = 'muted';
      time.textContent = ` about ${duration(job.estimated_time_s)} of ${job.process}`;
      entry.append(time);
    }
    return entry;
  }));
  production.hidden = false;
}

function showTotal(total) {
  // the order's total once every line is priced (an API order's lines are priced after it is placed)
  const shown = document.getElementById('order-total');
  if (!shown || !total || total.state !== 'final' || shown.dataset.state === 'final') return;
  const money = (value) => `${value.toFixed(2)} ${total.currency}`;
  const figure = document.createElement('strong');
  figure.textContent = money(total.total);
  const parts = ['Order total: ', figure];
  if (total.setup) {
    const note = document.createElement('span');
    note.className = 'muted';
    note.textContent = `(setup ${money(total.setup)}, once per process for the whole order)`;
    parts.push(' ', note);
  }
  shown.replaceChildren(...parts);
  shown.classList.remove('muted');
  shown.dataset.state = 'final';
}

function making(order) {
  return order.items.some((item) => item.production.some((job) => !FINAL_JOB_STATES.includes(job.state)));
}

async function poll() {
  try {
    const response = await fetch(tracking.dataset.apiUrl, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (response.ok) {
      const order = await response.json();
      order.items.forEach(showItem);
      showTotal(order.total);
      orderStatus.textContent = order.label;
      orderStatus.className = `state state-${order.progress}${order.progress === 'ready' ? ' files' : ''}`;
      state.status = order.status;
      state.polls += 1;
      if (order.status === 'failed') return;
      if (order.status === 'ready') {
        // the workshop plans the jobs within a minute or two of the files: wait for them, then follow them
        const planned = order.items.some((item) => item.production.length > 0);
        state.waitingForJobs = planned ? 0 : (state.waitingForJobs || 0) + 1;
        if (order.total?.state === 'pending') state.waitingForPrice = (state.waitingForPrice || 0) + 1;
        const pricing = order.total?.state === 'pending' && state.waitingForPrice <= 90;  // its lines being priced
        if (pricing) setTimeout(poll, POLL_MS);
        else if (making(order) || (!planned && state.waitingForJobs <= 15)) setTimeout(poll, PRODUCTION_POLL_MS);
        return;
      }
    }
  } catch (error) {
    // a network hiccup: try again at the next poll
  }
  setTimeout(poll, POLL_MS);
}

if (tracking && (tracking.dataset.status === 'queued' || tracking.dataset.status === 'rendering'
                 || (tracking.dataset.total === 'pending' && tracking.dataset.status !== 'failed'))) {
  setTimeout(poll, POLL_MS);
} else if (tracking && tracking.dataset.making === 'yes') {
  setTimeout(poll, PRODUCTION_POLL_MS);
}
