// The tracking page's live updates: poll the order's JSON (GET /api/v1/orders/<id>?token=...) and show
// each item's state, its failure reason and, once ready, its downloads. Without JavaScript the page reloads.
const tracking = document.getElementById('tracking');
const orderStatus = document.getElementById('order-status');
const POLL_MS = 2000;
const state = window.__tracking = { polls: 0, status: tracking?.dataset.status };

function kilobytes(bytes) {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function showItem(item) {
  const line = tracking.querySelector(`[data-position="${item.position}"]`);
  if (!line) return;
  const stateBadge = line.querySelector('[data-role="state"]');
  stateBadge.textContent = item.state;
  stateBadge.className = `state state-${item.state}`;
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
      link.download = file.filename;
      link.textContent = file.filename;
      const note = document.createElement('span');
      note.className = 'muted';
      note.textContent = ` ${file.format.toUpperCase()}, ${kilobytes(file.bytes)}`;
      entry.append(link, note);
      return entry;
    }));
  }
  files.hidden = item.files.length === 0;
}

async function poll() {
  try {
    const response = await fetch(tracking.dataset.apiUrl, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (response.ok) {
      const order = await response.json();
      order.items.forEach(showItem);
      orderStatus.textContent = order.status;
      orderStatus.className = `state state-${order.status}`;
      state.status = order.status;
      state.polls += 1;
      if (order.status === 'ready' || order.status === 'failed') return;
    }
  } catch (error) {
    // a network hiccup: try again at the next poll
  }
  setTimeout(poll, POLL_MS);
}

if (tracking && (tracking.dataset.status === 'queued' || tracking.dataset.status === 'rendering')) {
  setTimeout(poll, POLL_MS);
}
