// The plates' preparing page with JavaScript: ask again in the background (HEAD of this page's own address,
// every Retry-After seconds) instead of reloading the page, and once the plates are made (200) go to that
// address, which the browser saves as the file while this page stays, saying so; a refusal (4xx) is shown by
// going to it too. Without JavaScript the page's <noscript> refresh does the same.
const waiting = document.getElementById('plates-waiting');
const state = window.__plates = { polls: 0, delivered: false };

async function ask() {
  const again = waiting.dataset.again;
  let seconds = Number(waiting.dataset.seconds) || 2;
  try {
    const response = await fetch(again, { method: 'HEAD', credentials: 'same-origin', cache: 'no-store' });
    state.polls += 1;
    seconds = Number(response.headers.get('Retry-After')) || seconds;
    if (response.status === 200) {
      state.delivered = true;
      document.getElementById('plates-status').textContent = waiting.dataset.readyText;
      window.location.assign(again);
      return;
    }
    if (response.status >= 400 && response.status < 500) {
      window.location.assign(again);
      return;
    }
  } catch (error) {
    // the network is away for a moment: ask again
  }
  window.setTimeout(ask, seconds * 1000);
}

if (waiting) window.setTimeout(ask, (Number(waiting.dataset.seconds) || 2) * 1000);
