// The configurator's progressive enhancement: units switch, shoe-size picker, live 3D preview,
// inline validation from the server's rules and the live quote. The form works without it.
import * as THREE from 'three';
import { GLTFLoader } from './vendor/three/examples/jsm/loaders/GLTFLoader.js';
import { OrbitControls } from './vendor/three/examples/jsm/controls/OrbitControls.js';
import { duration } from './units.js';

const MM_PER = { mm: 1, cm: 10, in: 25.4, ft: 304.8 };  // the unit systems a customer may choose
const UNIT_HINTS = { mm: 'mm', cm: 'cm', in: 'in', ft: 'ft + in' };
const DEBOUNCE_MS = 300;

const form = document.getElementById('configurator');
const viewerBox = document.getElementById('viewer');
const dimensions = document.getElementById('dimensions');
const statusLine = document.getElementById('preview-status');
const orderButton = document.getElementById('order-button');
const orderHint = document.getElementById('order-hint');
const quotePrice = document.getElementById('quote-price');
const quoteLead = document.getElementById('quote-lead');
const quoteBasis = document.getElementById('quote-basis');
const quoteBox = document.getElementById('quote');
const quoteTimes = document.getElementById('quote-times');

// What tests and the benchmark read: how many previews were shown, and how long the last one took; ``settled``
// once the form's configuration is the one shown (no change waiting, no preview on its way).
const previewState = window.__preview = { done: 0, errors: 0, last: null, viewer: 'starting', settled: false };
// ... and for prices: when the last configuration's estimate and its final (sliced) price were shown; ``settled``
// once the preview has and no quote is on its way (its final price, or why there is none, is shown).
const quoteState = window.__quote = { done: 0, last: null, settled: false };
let waitingChange = null;  // the debounce timer of a change not yet taken up
let previewRunning = false;  // the latest change's preview is on its way
let quoteRunning = false;  // the latest quote asked is on its way

function settle() {
  previewState.settled = !waitingChange && !previewRunning;
  quoteState.settled = previewState.settled && !quoteRunning;
}

// -- units -------------------------------------------------------------------------------------

const lengthInputs = [...form.querySelectorAll('input[data-length]')];
const millimetres = new Map();  // input -> its value in mm (null when empty), kept exact across unit switches

function currentUnits() {
  const value = form.querySelector('input[name="units"]:checked')?.value;
  return value in MM_PER ? value : 'mm';
}

function trimmed(value, decimals) {
  return String(Number(value.toFixed(decimals)));
}

// A length as the input shows it (the server's display_number): "31.5", "6 ft 2 in". Display only: what is
// typed is read by the server's one length parser.
function shown(mm, units) {
  if (units !== 'ft') return trimmed(mm / MM_PER[units], units === 'mm' ? 4 : 3);
  const inches = Number((mm / MM_PER.in).toFixed(3));
  const feet = Math.floor(inches / 12);
  const rest = Number((inches - feet * 12).toFixed(3));
  if (!feet) return `${trimmed(rest, 3)} in`;
  return rest ? `${feet} ft ${trimmed(rest, 3)} in` : `${feet} ft`;
}

// mm for a plain number typed in the shown units (a plain number in "ft + in" is feet, as the server reads
// it); null when empty; NaN when it carries its own unit or is not a number: the server reads that text.
function readMillimetres(input, units) {
  const text = input.value.trim();
  if (text === '') return null;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text)) return NaN;
  return Number(text) * MM_PER[units];
}

let displayedUnits = currentUnits();
for (const input of lengthInputs) millimetres.set(input, readMillimetres(input, displayedUnits));

function applyUnits(units) {
  const switched = units !== displayedUnits;  // at start the boxes keep the text as given (a saved link's 31.4999)
  for (const input of lengthInputs) {
    const mm = millimetres.get(input);
    if (switched && mm !== null && !Number.isNaN(mm)) input.value = shown(mm, units);
    const field = input.closest('.field');
    const label = field.querySelector('[data-unit-label]');
    if (label) label.textContent = UNIT_HINTS[units];
    const allowed = field.querySelector('[data-allowed]');
    const text = input.dataset[`allowed${units[0].toUpperCase()}${units.slice(1)}`];
    if (allowed && text) allowed.textContent = `Allowed: ${text}.`;
  }
  displayedUnits = units;
  showDimensions();
}

// -- the request the server validates ------------------------------------------------------------

// Lengths known in mm go as exact millimetres ("812.8mm"), so a configuration seen before is recognised;
// text with its own unit ("6ft") goes as typed. The units say what the messages are written in.
function exact(input) {
  const mm = millimetres.get(input);
  return mm === null ? '' : Number.isNaN(mm) ? input.value : `${trimmed(mm, 4)}mm`;
}

function query() {
  const data = new FormData(form);
  data.delete('csrf_token');
  data.set('units', displayedUnits);
  for (const input of lengthInputs) data.set(input.name, exact(input));
  return new URLSearchParams(data).toString();
}

// Once the server has read a length typed with its own unit, it is known in mm (for switching units).
function learn(params) {
  for (const input of lengthInputs) {
    const name = input.name.slice('params.'.length);
    if (Number.isNaN(millimetres.get(input)) && typeof params[name] === 'number') millimetres.set(input, params[name]);
  }
}

// -- inline messages -----------------------------------------------------------------------------

function clearErrors() {
  for (const slot of form.querySelectorAll('[data-error-for]')) {
    slot.hidden = true;
    slot.textContent = '';
  }
  for (const field of form.querySelectorAll('.field.invalid')) field.classList.remove('invalid');
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
}

function showErrors(errors) {
  clearErrors();
  for (const { field, message } of errors) {
    let slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!slot || field === '' || field === 'params') slot = document.getElementById('form-errors');
    const line = document.createElement('p');
    line.textContent = message;
    if (slot.id === 'form-errors') slot.append(line); else slot.textContent = [slot.textContent, message].join(' ').trim();
    slot.hidden = false;
    const fieldBox = slot.closest('.field');
    if (fieldBox) {
      fieldBox.classList.add('invalid');
      fieldBox.querySelector('input, select')?.setAttribute('aria-invalid', 'true');
    }
  }
}

function setValid(valid) {
  orderButton.disabled = !valid;
  orderHint.textContent = valid ? '' : 'Please correct the marked values to continue.';
}

// -- the 3D viewer -------------------------------------------------------------------------------

let viewer = null;

function createViewer() {
  const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  const canvas = renderer.domElement;
  canvas.tabIndex = 0;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', viewerBox.dataset.label || '3D preview');
  canvas.id = 'preview-canvas';
  viewerBox.replaceChildren(canvas);

  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xeef1f4);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x8d8d8d, 2.2));
  const key = new THREE.DirectionalLight(0xffffff, 2.0);
  key.position.set(1, 2, 1.5);
  scene.add(key);
  const fill = new THREE.DirectionalLight(0xffffff, 0.8);
  fill.position.set(-1.5, 0.5, -1);
  scene.add(fill);

  const camera = new THREE.PerspectiveCamera(35, 4 / 3, 0.1, 100000);
  camera.position.set(1, 0.8, 1.4);
  const controls = new OrbitControls(camera, canvas);
  controls.listenToKeyEvents(canvas);
  const render = () => renderer.render(scene, camera);
  controls.addEventListener('change', render);

  const resize = () => {
    const width = viewerBox.clientWidth || 480;
    const height = viewerBox.clientHeight || 360;
    renderer.setSize(width, height, false);
    camera.aspect = width / height;
    camera.updateProjectionMatrix();
    render();
  };
  new ResizeObserver(resize).observe(viewerBox);
  resize();
  return { renderer, scene, camera, controls, render, model: null, fitted: false };
}

const loader = new GLTFLoader();
const models = new Map();  // GLB address -> parsed scene (addresses name their content)

async function loadModel(url, signal) {
  if (models.has(url)) return models.get(url);
  const response = await fetch(url, { signal });
  if (!response.ok) throw new Error(`preview file: HTTP ${response.status}`);
  const buffer = await response.arrayBuffer();
  const gltf = await new Promise((resolve, reject) => loader.parse(buffer, '', resolve, reject));
  const model = new THREE.Group();  // the files are Z-up (CAD); three.js is Y-up
  model.add(gltf.scene);
  gltf.scene.rotation.x = -Math.PI / 2;
  model.traverse((node) => {
    if (node.isMesh && node.material) node.material.side = THREE.DoubleSide;
  });
  models.set(url, model);
  if (models.size > 24) {  // keep memory bounded: drop the oldest model not on screen
    const [oldUrl, oldModel] = models.entries().next().value;
    if (oldModel !== viewer?.model) {
      models.delete(oldUrl);
      oldModel.traverse((node) => node.geometry?.dispose());
    }
  }
  return model;
}

function frame(model) {
  const box = new THREE.Box3().setFromObject(model);
  const centre = box.getCenter(new THREE.Vector3());
  const size = box.getSize(new THREE.Vector3());
  const radius = Math.max(size.length() / 2, 1);
  const { camera, controls } = viewer;
  const direction = camera.position.clone().sub(controls.target).normalize();
  const distance = radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2)) * 1.05;
  controls.target.copy(centre);
  camera.position.copy(centre).addScaledVector(direction, distance);
  camera.near = distance / 100;
  camera.far = distance * 100;
  camera.updateProjectionMatrix();
  controls.update();
}

// The first model is framed; after that the camera stays where the customer left it (position, target, zoom)
// when a changed configuration's model replaces the last one. Only the far plane grows, so a bigger model is
// never cut off. "Fit the model in view" frames it again.
function keepInView(model) {
  const sphere = new THREE.Box3().setFromObject(model).getBoundingSphere(new THREE.Sphere());
  const { camera } = viewer;
  const needed = camera.position.distanceTo(sphere.center) + sphere.radius * 2;
  if (needed > camera.far) {
    camera.far = needed;
    camera.updateProjectionMatrix();
  }
}

function showModel(model) {
  if (viewer.model) viewer.scene.remove(viewer.model);
  viewer.scene.add(model);
  viewer.model = model;
  if (viewer.fitted) keepInView(model);
  else frame(model);
  viewer.fitted = true;
  viewer.render();
}

// What tests read of the camera: where it is, what it looks at, its zoom.
previewState.camera = () => viewer && {
  position: viewer.camera.position.toArray(), target: viewer.controls.target.toArray(), zoom: viewer.camera.zoom,
};

let lastBbox = null;

function showDimensions() {
  if (!lastBbox) return;
  const units = displayedUnits;
  if (units === 'ft') {
    dimensions.textContent = `Overall size: ${lastBbox.map((mm) => shown(mm, 'ft')).join(' × ')}`;
    return;
  }
  const parts = lastBbox.map((mm) => trimmed(mm / MM_PER[units], units === 'mm' ? 1 : 2));
  dimensions.textContent = `Overall size: ${parts.join(' × ')} ${units}`;
}

// -- the live quote ------------------------------------------------------------------------------

let quoting = null;

function showTimes(parts) {
  // each part's machine time (of all the copies), in the words the confirmation uses
  quoteTimes.replaceChildren(...(parts || []).map((part) => {
    const item = document.createElement('li');
    item.dataset.part = part.name;
    item.textContent = `${part.copies} × ${part.name}: about ${duration(part.estimate.machine_time_s)} of `
      + `${part.process === 'fdm' ? 'printing' : 'cutting'}`;
    return item;
  }));
  quoteTimes.hidden = !quoteTimes.children.length;
}

function showFigures(figures, basis) {
  quoteBox.dataset.figures = figures;
  quoteBasis.textContent = basis;
}

function pricePending() {
  // never show the last configuration's price as this one's
  quotePrice.textContent = '…';
  quoteLead.textContent = 'Calculating the price…';
  showFigures('', '');
  showTimes([]);
}

function priceUnknown(lead = '') {
  quotePrice.textContent = 'Shown at checkout.';
  quoteLead.textContent = lead;
  showFigures('', '');
  showTimes([]);
}

function showPrice(request, body) {
  // an estimate (202 "estimate": from the printers' past slices) is marked as one, with its expected error;
  // the final price (sliced by PrusaSlicer, or from the router's toolpaths) replaces it and says so
  const { price, lead_time: lead } = body;
  const money = (value) => `${value.toFixed(2)} ${price.currency}`;
  const estimated = body.figures === 'estimate';
  quotePrice.textContent = estimated ? `about ${money(price.total)}` : money(price.total);
  quoteLead.textContent = `${request.quantity} × ${money(price.unit)} plus ${money(price.setup)} setup · `
    + `ships in ${lead.days} days (by ${lead.ships_by})`;
  showTimes(body.parts);
  if (estimated) {
    const { error_pct: error, low, high } = body.estimate;
    showFigures('estimate', `Estimate from our printers' past prints, usually within ±${error.toFixed(0)} % `
      + `(${money(low)} to ${money(high)}). The exact price follows in a few seconds, once your part is sliced.`);
  } else {
    const sliced = body.parts.some((part) => part.estimate.source === 'prusaslicer');
    showFigures('final', sliced ? 'Exact price: your part was sliced for the printer that will make it.' : '');
  }
}

function timeQuote(startedAt, body) {
  // when (performance.now()) this configuration's estimate and final price were first shown, and their totals
  const at = performance.now();
  const last = quoteState.last && quoteState.last.startedAt === startedAt ? quoteState.last : { startedAt };
  if (body.figures === 'estimate' && last.estimateAt === undefined) {
    Object.assign(last, { estimateAt: at, estimateTotal: body.price.total, estimateErrorPct: body.estimate.error_pct });
  }
  if (body.figures === 'final') {
    Object.assign(last, { finalAt: at, finalTotal: body.price.total });
    quoteState.done += 1;
  }
  quoteState.last = last;
}

function retryDelay(response, body) {
  // the server says when to ask again (a 202 "preparing" or a 429): Retry-After, in seconds
  const seconds = Number(response.headers.get('Retry-After') || body?.retry_after || 2);
  return Math.min(Math.max(seconds, 1), 30) * 1000;
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); reject(new DOMException('aborted', 'AbortError')); });
  });
}

// Previews and quotes of a new configuration are built by the workshop's workers: the server answers 202
// "preparing" (or 429 when this address asked for too many) and says when to ask again.
async function patiently(url, options, sequence, onWait) {
  for (;;) {
    const response = await fetch(url, options);
    const body = await response.json();
    if (response.status !== 202 && response.status !== 429) return { response, body };
    if (sequence !== latest) return { response, body };
    onWait(response.status, body);
    await pause(retryDelay(response, body), options.signal);
  }
}

async function updateQuote(request, sequence) {
  // a printed part is priced from PrusaSlicer's estimates: a new configuration can take a few seconds, during
  // which the server may answer with an estimate from the printers' past slices
  quoting?.abort();
  const controller = quoting = new AbortController();
  quoteRunning = true;
  settle();
  pricePending();
  const startedAt = performance.now();
  quoteState.last = { startedAt };
  try {
    const { response, body } = await patiently(form.dataset.quoteUrl, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(request), signal: quoting.signal,
    }, sequence, (status, waiting) => {
      if (status === 202 && waiting.state === 'estimate') {
        showPrice(request, waiting);
        timeQuote(startedAt, waiting);
        return;
      }
      quoteLead.textContent = status === 429 ? waiting.errors[0].message : 'Working out the price…';
      if (waiting.estimate_unavailable) showFigures('', `No quick estimate: ${waiting.estimate_unavailable}.`);
    });
    if (sequence !== latest) return;
    if (response.status === 422) {
      priceUnknown();
      showErrors(body.errors.map((e) => ({ ...e })));
      setValid(false);
      return;
    }
    if (!response.ok) throw new Error(body.errors?.[0]?.message || `HTTP ${response.status}`);  // 503: our words
    showPrice(request, body);
    timeQuote(startedAt, body);
  } catch (error) {
    if (error.name === 'AbortError') return;
    if (sequence !== latest) return;
    priceUnknown('The price will be shown at checkout.');
  } finally {
    if (quoting === controller) {  // not a quote a newer one replaced (that one is on its way)
      quoteRunning = false;
      settle();
    }
  }
}

// -- values on their steps -------------------------------------------------------------------------

function showSnapped(snapped) {
  // the server rounds each number to its field's step before preparing it: show the value it used
  const notes = [];
  for (const [name, { used }] of Object.entries(snapped || {})) {
    const input = form.querySelector(`[name="params.${CSS.escape(name)}"]`);
    if (!input) continue;
    if (millimetres.has(input)) {
      millimetres.set(input, used);
      input.value = shown(used, displayedUnits);
    } else {
      input.value = String(used);
    }
    const label = input.closest('.field')?.querySelector('label')?.textContent?.trim() || name;
    notes.push(`${label} rounded to ${input.value}${millimetres.has(input) ? ` ${displayedUnits}` : ''}`);
  }
  if (notes.length) {
    lastQuery = query();  // the rounded values are the configuration shown
    dimensions.dataset.snapped = notes.join('; ');
    statusLine.textContent = `${notes.join('; ')} (the nearest step we make).`;
  }
}

// -- one update: validate, preview, quote ----------------------------------------------------------

let latest = 0;
let lastQuery = null;
let inflight = null;
const answers = new Map();  // query -> the preview endpoint's answer (deterministic for a configuration)

async function update(startedAt) {
  updateShareLink();  // also after changes made for the customer (the size picker fills the foot length)
  const current = query();
  if (current === lastQuery) {
    settle();
    return;
  }
  lastQuery = current;
  const sequence = ++latest;
  previewRunning = true;
  pricePending();  // the configuration changed: its price comes after its preview
  inflight?.abort();
  inflight = new AbortController();
  const { signal } = inflight;
  viewerBox.classList.add('busy');
  statusLine.textContent = 'Checking your values…';
  try {
    const askedAt = performance.now();
    let answer = answers.get(current);
    if (!answer) {
      const { response, body } = await patiently(`${form.dataset.previewUrl}?${current}`,
        { signal, headers: { Accept: 'application/json' } }, sequence, (status, waiting) => {
          statusLine.textContent = status === 429 ? waiting.errors[0].message : 'Preparing the preview of your values…';
          if (waiting.params) sizeAnswered(waiting.params);
          showSnapped(waiting.snapped);
        });
      if (sequence !== latest) return;
      if (response.status === 422) {
        if (sequence !== latest) return;
        priceUnknown();
        showErrors(body.errors);
        setValid(false);
        statusLine.textContent = 'The preview shows the last valid configuration.';
        previewState.errors += 1;
        window.dispatchEvent(new CustomEvent('preview:invalid', { detail: body.errors }));
        return;
      }
      if (!response.ok) throw new Error(body.errors?.[0]?.message || `HTTP ${response.status}`);  // 503: our words
      answer = body;
      answers.set(current, body);
    }
    if (sequence !== latest) return;
    clearErrors();
    setValid(true);
    learn(answer.params);
    sizeAnswered(answer.params);
    showSnapped(answer.snapped);
    lastBbox = answer.bbox_mm;
    const answeredAt = performance.now();
    if (viewer) {
      const model = await loadModel(answer.glb, signal);
      if (sequence !== latest) return;
      showModel(model);
      await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    }
    showDimensions();
    if (!Object.keys(answer.snapped || {}).length) statusLine.textContent = '';
    previewState.done += 1;
    const finishedAt = performance.now();
    previewState.last = {
      startedAt, finishedAt, ms: finishedAt - startedAt, cacheHit: answer.cache_hit, glb: answer.glb,
      answerMs: answeredAt - askedAt, modelMs: finishedAt - answeredAt,  // the server's part, the page's part
    };
    window.dispatchEvent(new CustomEvent('preview:done', { detail: previewState.last }));
    updateQuote(answer.quote_request, sequence);
  } catch (error) {
    if (error.name === 'AbortError' || sequence !== latest) return;
    lastQuery = null;
    priceUnknown('The price will be shown at checkout.');
    statusLine.textContent = `The preview could not be updated (${error.message}); your values are still checked when you continue.`;
  } finally {
    if (sequence === latest) {
      viewerBox.classList.remove('busy');
      previewRunning = false;
    }
    settle();
  }
}

function schedule(delay, startedAt) {
  clearTimeout(waitingChange);
  waitingChange = setTimeout(() => {
    waitingChange = null;
    update(startedAt);
  }, delay);
  settle();
}

form.addEventListener('input', (event) => {
  if (event.target.name === 'units') return;
  if (millimetres.has(event.target)) millimetres.set(event.target, readMillimetres(event.target, displayedUnits));
  schedule(DEBOUNCE_MS, event.timeStamp);
});
// -- sheet thicknesses the shop stocks ---------------------------------------------------------------

// A sheet thickness the routers do not stock in the chosen material is greyed out (the server refuses it the
// same way); when the material changes and the chosen thickness is not stocked in it, the nearest stocked one
// is chosen instead.
function applyStock() {
  const material = form.querySelector('[name="material"]')?.value;
  for (const select of form.querySelectorAll('select')) {
    const options = [...select.options].filter((option) => option.dataset.stockedIn !== undefined);
    if (!options.length) continue;
    for (const option of options) option.disabled = !option.dataset.stockedIn.split(' ').includes(material);
    const chosen = select.selectedOptions[0];
    if (chosen && chosen.disabled) {
      const open = options.filter((option) => !option.disabled);
      const target = Number(chosen.value);
      const nearest = open.sort((a, b) => Math.abs(a.value - target) - Math.abs(b.value - target))[0];
      if (nearest) select.value = nearest.value;
    }
  }
}

form.addEventListener('change', (event) => {
  if (event.target.name === 'units') {
    applyUnits(currentUnits());
    return;
  }
  if (event.target.name === 'material') applyStock();
  if (millimetres.has(event.target)) millimetres.set(event.target, readMillimetres(event.target, displayedUnits));
  schedule(0, event.timeStamp);  // a committed value (Enter, leaving the field, a menu) needs no debounce
});
form.addEventListener('submit', () => {
  // Send exact millimetres, whatever the customer looked at them in; the units chosen stay with the order.
  for (const input of lengthInputs) input.value = exact(input);
});

// -- shoe sizes (footwear) -------------------------------------------------------------------------

// The System/Size menus and the shoe-size box show one size: a size typed in the box is read by the server (the
// core's sizing.py; the preview answers with its canonical spelling, "EU 46") and the menus select the entry of
// /shoe-sizes.json with that spelling, or nothing while it is not a size of the table; a size chosen in the menus
// fills the foot length from the table and empties the box. No shoe size is parsed here.
let followSize = () => {};
let lastParams = null;
function sizeAnswered(params) {
  lastParams = params;
  followSize(params);
}

async function setUpSizePicker() {
  const picker = document.getElementById('size-picker');
  const footLength = form.querySelector('input[name="params.foot_length"]');
  const shoeSize = form.querySelector('input[name="params.shoe_size"]');
  if (!picker || !footLength || !form.dataset.sizesUrl) return;
  const { systems } = await (await fetch(form.dataset.sizesUrl)).json();
  const systemSelect = document.getElementById('size-system');
  const sizeSelect = document.getElementById('size-value');
  const bySystem = new Map(systems.map((s) => [s.id, s]));
  for (const option of [...systemSelect.options]) if (!bySystem.has(option.value)) option.remove();
  let filled = false;  // the foot length in its box is the one the menus wrote (the customer has not changed it)
  const fill = () => {
    const system = bySystem.get(systemSelect.value);
    sizeSelect.replaceChildren(new Option('choose', ''));
    for (const { size, foot_length_mm: mm, text } of system.sizes) {
      const option = new Option(`${system.label} ${size}`, String(mm));
      option.dataset.size = String(size);
      option.dataset.text = text;  // the core's spelling of this size
      sizeSelect.append(option);
    }
  };
  const choose = (text) => {  // select the menus' entry the core spells ``text``; false if there is none
    const system = systems.find((s) => s.sizes.some((entry) => entry.text === text));
    if (!system) return false;
    if (systemSelect.value !== system.id) {
      systemSelect.value = system.id;
      fill();
    }
    sizeSelect.value = [...sizeSelect.options].find((o) => o.dataset.text === text).value;
    return true;
  };
  systemSelect.addEventListener('change', fill);
  sizeSelect.addEventListener('change', (event) => {
    event.stopPropagation();  // only the foot length it fills is part of the configuration
    if (!sizeSelect.value) return;
    const mm = Number(sizeSelect.value);
    millimetres.set(footLength, mm);
    footLength.value = shown(mm, displayedUnits);
    filled = true;
    if (shoeSize) shoeSize.value = '';  // one source for the foot length: the size table's
    schedule(0, event.timeStamp);
  });
  systemSelect.addEventListener('change', (event) => event.stopPropagation());
  shoeSize?.addEventListener('input', () => {
    sizeSelect.value = '';  // until the server has read the size typed, the menus show none
    if (filled) {  // the foot length the menus wrote stood for their size, not the one being typed
      footLength.value = '';
      millimetres.set(footLength, null);
      filled = false;
    }
  });
  footLength.addEventListener('input', () => {
    filled = false;
    if (!shoeSize?.value.trim()) sizeSelect.value = '';  // a measured foot, not the menus' size
  });
  followSize = (params) => {
    if (params.shoe_size) {
      if (!choose(params.shoe_size)) sizeSelect.value = '';
    } else if (!filled) {
      sizeSelect.value = '';
    }
  };
  fill();
  if (lastParams) followSize(lastParams);
  picker.hidden = false;
}

// -- the link to this configuration ---------------------------------------------------------------

// The same address the server writes (web.shop.views.share_url): every field as the box shows it, in the units
// shown; a length whose shown text was rounded by a switch of units goes as its exact millimetres instead.
const shareBox = document.getElementById('share-link');
const shareCopy = document.getElementById('share-copy');
const shareStatus = document.getElementById('share-status');

function shareLink() {
  const data = new FormData(form);
  data.delete('csrf_token');
  if (!data.get('preset')) data.delete('preset');
  data.set('units', displayedUnits);
  for (const input of lengthInputs) {
    const mm = millimetres.get(input);
    if (mm !== null && !Number.isNaN(mm) && readMillimetres(input, displayedUnits) !== mm) {
      data.set(input.name, exact(input));
    }
  }
  return `${shareBox.dataset.base}?${new URLSearchParams(data)}`;
}

function updateShareLink() {
  if (!shareBox) return;
  shareBox.value = shareLink();
  shareStatus.textContent = '';
}

if (shareBox) {
  form.addEventListener('input', updateShareLink);
  form.addEventListener('change', updateShareLink);
  shareBox.addEventListener('focus', () => shareBox.select());
  shareCopy.hidden = false;
  shareCopy.addEventListener('click', async () => {
    updateShareLink();
    try {
      await navigator.clipboard.writeText(shareBox.value);
    } catch {
      shareBox.select();  // no clipboard access: the link is selected for the customer to copy
      if (!document.execCommand('copy')) {
        shareStatus.textContent = 'Select the link and copy it.';
        return;
      }
    }
    shareStatus.textContent = 'Link copied.';
  });
}

// -- start -----------------------------------------------------------------------------------------

try {
  viewer = createViewer();
  previewState.viewer = 'webgl';
  const fit = document.getElementById('view-fit');
  if (fit) {
    fit.hidden = false;
    fit.addEventListener('click', () => {
      if (!viewer.model) return;
      frame(viewer.model);
      viewer.render();
    });
  }
} catch (error) {
  previewState.viewer = 'unavailable';
  if (viewerBox.dataset.picture) {
    const picture = new Image(480, 360);
    picture.src = viewerBox.dataset.picture;
    picture.alt = viewerBox.dataset.label || '';
    viewerBox.replaceChildren(picture);
  }
  statusLine.textContent = 'Your browser cannot show the 3D preview (WebGL is off); the picture shows the standard size.';
}
applyUnits(currentUnits());
applyStock();
updateShareLink();
setUpSizePicker().catch(() => {});
update(performance.now());
