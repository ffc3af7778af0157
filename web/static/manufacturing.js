// The manufacturing page's live updates: poll the staff view GET /staff/manufacturing/state.json (the session
// cookie logs it in) and show each unfinished job's state, progress and last error in place, with the actions
// its state allows. When the page's layout changes (a machine edited, a job added, finished or sliced) the page
// reloads, so its rows and forms stay consistent; never while someone is typing in a form, and polling pauses
// then. Without JavaScript the page's "Refresh" link does the same. Also asks before a form with
// data-confirm (removing a machine) is sent.
const live = document.getElementById('live');
const liveStatus = document.getElementById('live-status');
const POLL_MS = 3000;
const TYPING_PAUSE_MS = 8000;
const state = window.__manufacturing = { polls: 0, changes: 0, paused: 0, layout: live?.dataset.layout };
let lastInput = 0;

function typing() {
  const active = document.activeElement;
  const editing = active && active.closest('form') !== null
    && active.matches('input:not([type=hidden]):not([type=submit]):not([type=button]), textarea, select');
  return Boolean(editing) || Date.now() - lastInput < TYPING_PAUSE_MS;
}

function showJob(job) {
  const row = document.getElementById(`job-${job.id}`);
  if (!row) return;
  if (row.dataset.state !== job.state) state.changes += 1;
  row.dataset.state = job.state;
  row.querySelector('[data-role="state"]').textContent = job.label;
  const cell = row.querySelector('[data-role="progress"]');
  if (job.not_sent) {
    cell.textContent = 'not sent yet';
  } else if (job.kind === 'cnc') {
    cell.textContent = job.state === 'printing' ? 'on the router' : '–';
  } else {
    const percent = `${job.progress.toFixed(1)} %`;
    if (!cell.querySelector('progress')) {  // it said "not sent yet": the bar comes back once it is sent
      const fresh = document.createElement('progress');
      fresh.max = 100;
      const text = document.createElement('span');
      text.dataset.role = 'percent';
      cell.replaceChildren(fresh, ' ', text);
    }
    const bar = cell.querySelector('progress');
    if (bar) {
      bar.value = job.progress;
      bar.textContent = percent;
    }
    const label = cell.querySelector('[data-role="percent"]');
    if (label) label.textContent = percent;
  }
  row.querySelector('[data-role="error"]').textContent = job.last_error;
  for (const form of row.querySelectorAll('form[data-states]')) {
    form.hidden = !form.dataset.states.split(' ').includes(job.state);
  }
}

function say(text) {
  if (liveStatus) liveStatus.textContent = text;
}

function reload() {
  state.reloading = true;
  window.location.reload();
}

async function poll() {
  if (document.hidden || typing()) {
    state.paused += 1;
    setTimeout(poll, POLL_MS);
    return;
  }
  try {
    const response = await fetch(live.dataset.stateUrl, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    const isJson = (response.headers.get('Content-Type') || '').startsWith('application/json');
    if (response.ok && !isJson) {
      reload(); // the session ended and the login page answered: show it
      return;
    }
    if (response.ok) {
      const current = await response.json();
      state.polls += 1;
      if (current.layout !== state.layout && !typing()) {
        reload();
        return;
      }
      current.jobs.forEach(showJob);
      say(`Live: as of ${new Date().toLocaleTimeString()}.`);
    } else {
      say(`Live updates paused: the server answered ${response.status}. Refresh to try again.`);
    }
  } catch (error) {
    say('Live updates paused: no connection; trying again.');
  }
  setTimeout(poll, POLL_MS);
}

document.addEventListener('input', () => { lastInput = Date.now(); });
for (const form of document.querySelectorAll('form[data-confirm]')) {
  form.addEventListener('submit', (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}
if (live) {
  say('Live: states and progress update by themselves.');
  setTimeout(poll, POLL_MS);
}
