"""Preview latency as the customer feels it: from a changed value to the new mesh on screen, in a real browser.

``parametric serve --no-worker`` runs on loopback (SQLite, a cold cache of its own) and
headless Chromium (Debian's ``/usr/bin/chromium``, WebGL on SwiftShader) opens each
template's configurator. For each template, after one warm-up change, the first length
field is set to N new values (typed, then Tab: the ``change`` event, which the page answers
without the 300 ms typing debounce). The page itself times each change, from the event to
the frame after the new GLB is drawn (``window.__preview.last``): a *new* configuration is
validated, built and exported by the server, fetched and drawn. Then a fresh page (empty
browser cache) replays the same values: configurations *seen before* (by the server), which
come from the cache without the CAD kernel. Finally the first page goes back over its own
values (*seen in this page*: answered from the page's memory).

Figures per template: p50/p95 in ms, and the server's share (the preview request) beside
the page's (GLB download, parse, draw). Targets: p95 < 1000 ms new, < 300 ms seen before.

Prices (``--prices``, printed templates in PLA): a printer (mk3, PLA loaded) is set up and the shop's
history is the real PrusaSlicer slices of the templates recorded in
``tests/parametric/fdm/data/template_slices.csv`` (the printer's estimator is fitted to them); each new
configuration is asked for as the configurator asks (its preview until ready, then its quote, polled every
0.2 s) and timed from the quote request to the instant estimate (202 "estimate") and to the sliced price
(200); the estimate is compared with the sliced price. Target: estimate p95 < 300 ms. The page's own label
change is what ``tests/web/test_browser_estimates.py`` checks. Prints its figures; asserts nothing.

    .venv/bin/python bench/bench_preview.py [--changes 8] [--template wall_shelf ...] [--field thickness]
    .venv/bin/python bench/bench_preview.py --prices [--changes 6] [--template leg_cap ...]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("PARAMETRIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader"]
TARGET_NEW_MS, TARGET_SEEN_MS, TARGET_ESTIMATE_MS = 1000, 300, 300
RECORDED = Path(__file__).resolve().parents[1] / "tests" / "parametric" / "fdm" / "data" / "template_slices.csv"
PRINTER = {"kind": "printer", "name": "mk3", "build_volume_mm": [250, 210, 210], "nozzle_diameter_mm": 0.4,
           "materials": ["pla"]}
STAFF = ("bench", "a staff password for the benchmark")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def server_environment(folder: Path) -> dict[str, str]:
    """The server's own SQLite database, queue and cache in ``folder``, with its embedded worker."""
    return {**os.environ, "PARAMETRIC_INSTANCE": str(folder / "instance"), "PARAMETRIC_OUTPUT": str(folder / "output"),
            "DATABASE_URL": f"sqlite:///{folder / 'shop.db'}", "REDIS_URL": ""}


def set_up_printing(folder: Path, base: str) -> int:
    """A printer with PLA, and its history: the recorded real slices of the templates. Returns how many."""
    import base64
    import csv
    import json

    from parametric.fdm.estimator import FEATURES, PartFeatures
    from parametric.machines import machine_from_dict
    from web.db import Database
    from web.orders.estimates import record_slice

    env = server_environment(folder)
    subprocess.run([sys.executable, "-m", "parametric.cli", "users", "add", STAFF[0], "--password", STAFF[1]],
                   env=env, check=True, capture_output=True)
    request = urllib.request.Request(base + "/api/v1/staff/machines", data=json.dumps(PRINTER).encode(), headers={
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()})
    with urllib.request.urlopen(request, timeout=30):
        pass
    database = Database(env["DATABASE_URL"])
    printer = machine_from_dict(PRINTER)
    with RECORDED.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        features = PartFeatures(*(float(row[n]) for n in FEATURES))
        record_slice(database, printer, row["material"], row["template"],
                         f"{row['template']}:{row['configuration']}:{row['part']}",
                     features, float(row["print_time_s"]), float(row["filament_g"]))
    database.dispose()
    return len(rows)


def api_values(template_id: str, count: int, name: str | None) -> tuple[str, list[float]]:
    """A numeric field of the template (``name``, else its first with a step) and ``count`` new values on its
    step, inside its range."""
    import parametric

    properties = parametric.get_template(template_id).schema()["properties"]
    chosen = name or next(n for n, p in properties.items() if p.get("type") == "number" and p.get("step"))
    field = properties[chosen]
    step = float(field.get("step") or 1)
    start = float(field["default"])
    sign = 1 if start + (count + 1) * step <= float(field["maximum"]) else -1
    seed = int(time.time()) % 7  # another run of the bench asks for other values
    return chosen, [round(start + sign * (seed + index + 1) * step, 4) for index in range(count)]


def price_by_api(base: str, template_id: str, field: str, value: float, timeout: float = 600) -> dict[str, Any] | None:
    """One new configuration as the configurator asks for it: its preview (until ready), then its quote, timed
    from the quote request to the estimate (202 "estimate") and to the sliced price (200)."""
    import json
    import urllib.error

    def ask(url: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + url, data=data, headers={"Content-Type": "application/json",
                                                                        "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    deadline = time.monotonic() + timeout
    while True:
        status, shown = ask(f"/configure/{template_id}/preview?params.{field}={value}&quantity=1&material=pla")
        if status == 200:
            break
        if status not in (202, 429) or time.monotonic() > deadline:
            print(f"  {field}={value}: preview answered {status}", flush=True)
            return None
        time.sleep(0.2)
    # The quote the configurator asks for: the preview's own request (a form leaves an unticked box out, so the
    # preview's stacking_lip is false where the API's default is true: another configuration, without a preview).
    line = shown["quote_request"]
    requested = time.perf_counter() * 1000
    sample: dict[str, Any] = {"requested": requested, "changed": requested, "estimateAt": None,
                              "estimateTotal": None, "errorPct": None}
    while time.monotonic() < deadline:
        status, body = ask("/api/v1/quotes", line)
        now = time.perf_counter() * 1000
        if status == 202 and body.get("state") == "estimate" and sample["estimateAt"] is None:
            sample.update(estimateAt=now, estimateTotal=body["price"]["total"], errorPct=body["estimate"]["error_pct"])
        elif status == 200:
            sample.update(finalAt=now, finalTotal=body["price"]["total"])
            return sample
        elif status not in (202, 429):
            print(f"  {field}={value}: quote answered {status}: {body}", flush=True)
            return None
        time.sleep(0.2)
    return None


def price_rows(samples: list[dict[str, Any]]) -> list[str]:
    estimated = [s for s in samples if s["estimateAt"] is not None]
    lines = []
    if estimated:
        to_estimate = [s["estimateAt"] - s["requested"] for s in estimated]
        p95 = percentile(to_estimate, 95)
        verdict = "  ok" if p95 < TARGET_ESTIMATE_MS else f"  MISSES {TARGET_ESTIMATE_MS} ms"
        lines.append(f"  {'estimate answered':<22} p50 {percentile(to_estimate, 50):7.0f}  p95 {p95:7.0f}"
                     f"   n={len(estimated)}{verdict}")
    to_final = [s["finalAt"] - s["requested"] for s in samples]
    lines.append(f"  {'sliced price answered':<22} p50 {percentile(to_final, 50):7.0f}  "
                 f"p95 {percentile(to_final, 95):7.0f}   n={len(samples)}")
    if estimated:
        misses = [abs(s["estimateTotal"] - s["finalTotal"]) / s["finalTotal"] * 100 for s in estimated]
        within = sum(m <= s["errorPct"] for m, s in zip(misses, estimated, strict=True))
        lines.append(f"  {'estimate vs sliced':<22} |error| p50 {percentile(misses, 50):.1f} %  max {max(misses):.1f} %"
                     f"   within its stated error: {within}/{len(estimated)}   "
                     f"(stated p50 {percentile([s['errorPct'] for s in estimated], 50):.1f} %)")
    if len(estimated) < len(samples):
        lines.append(f"  no estimate for {len(samples) - len(estimated)} of {len(samples)} (waited for the slice)")
    return lines


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = server_environment(folder)
    log = open(folder / "serve.log", "wb")  # noqa: SIM115  kept open for the server's life
    server = subprocess.Popen([sys.executable, "-m", "parametric.cli", "serve", "--workers", "1", "--port",
                               str(port), "--threads", "8"], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/api/v1/templates", timeout=2):
                return server, base
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not start:\n{(folder / 'serve.log').read_text()}")


def wait_for(page: Any, expression: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.005)
    raise TimeoutError(expression)


def values_for(page: Any, count: int, name: str | None = None) -> tuple[str, list[str]]:
    """The length field ``name`` (default: the first with a value): its name and ``count`` new values near it,
    inside its range."""
    field = page.evaluate("""(name) => {
        const input = [...document.querySelectorAll('input[data-length]')]
            .find((i) => name ? i.name === 'params.' + name : i.value !== '');
        return {name: input.name, value: Number(input.value), min: Number(input.dataset.minMm),
                max: Number(input.dataset.maxMm)};
    }""", name)
    delta = (field["max"] - field["min"]) / 400
    sign = 1 if field["value"] + (count + 1) * delta <= field["max"] else -1
    values = [f"{field['value'] + sign * (index + 1) * delta + 0.0123:.4f}" for index in range(count + 1)]
    return field["name"], values


def change(page: Any, name: str, value: str, timeout: float = 120) -> dict[str, Any] | None:
    """Set a value as a customer does (type, Tab) and wait for the preview; ``None`` if the server refused it."""
    done, refused = page.evaluate("[window.__preview.done, window.__preview.errors]")
    selector = f"input[name='{name}']"
    page.fill(selector, value)
    page.press(selector, "Tab")
    outcome = wait_for(page, f"window.__preview.done > {done} ? 'done' : "
                             f"(window.__preview.errors > {refused} ? 'refused' : '')", timeout)
    return page.evaluate("window.__preview.last") if outcome == "done" else None


def open_configurator(browser: Any, base: str, template_id: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/configure/{template_id}")
    wait_for(page, "window.__preview && window.__preview.done >= 1")
    return context, page


def row(label: str, samples: list[dict[str, Any]], target: float | None) -> str:
    if not samples:
        return f"  {label:<22} (no samples)"
    total = [s["ms"] for s in samples]
    server = [s["answerMs"] for s in samples]
    page_part = [s["modelMs"] for s in samples]
    p95 = percentile(total, 95)
    verdict = "" if target is None else ("  ok" if p95 < target else f"  MISSES {target} ms")
    return (f"  {label:<22} p50 {percentile(total, 50):7.0f}  p95 {p95:7.0f}   server p50 "
            f"{percentile(server, 50):6.0f}  page p50 {percentile(page_part, 50):5.0f}   n={len(total)}{verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=8, help="new values per template (default 8)")
    parser.add_argument("--template", action="append", help="only this template (repeatable)")
    parser.add_argument("--field", help="vary this length field (default: each template's first one)")
    parser.add_argument("--prices", action="store_true",
                        help="time the instant estimate and the sliced price of printed templates in PLA instead")
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("needs Playwright for Python: .venv/bin/pip install -e '.[dev]'") from None
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"needs Chromium at {CHROMIUM}: sh scripts/install-system-deps.sh")

    import parametric

    printed = [t.id for t in parametric.templates() if t.process == ("fdm",) and "pla" in t.materials]
    template_ids = args.template or (printed if args.prices else [t.id for t in parametric.templates()])
    folder = Path(tempfile.mkdtemp(prefix="parametric-bench-preview-"))
    server, base = start_server(folder)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            if args.prices:
                history = set_up_printing(folder, base)
                print(f"printer mk3 (PLA), history: {history} recorded PrusaSlicer slices of the templates; "
                      f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
                samples: list[dict[str, Any]] = []
                for template_id in template_ids:
                    field, values = api_values(template_id, args.changes, args.field)
                    mine = [price_by_api(base, template_id, field, value) for value in values]
                    mine = [s for s in mine if s]
                    samples += mine
                    print(f"{template_id}: {field} over {len(mine)} new configurations, ms from the preview ready "
                          "(the quote request):")
                    print("\n".join(price_rows(mine)) if mine else "  (no samples)", flush=True)
                browser.close()
                if samples:
                    print("\nAll printed templates, ms from the preview ready to the price answered:")
                    print("\n".join(price_rows(samples)))
                return 0
            for template_id in template_ids:
                context, page = open_configurator(browser, base, template_id)
                name, values = values_for(page, args.changes, args.field)
                change(page, name, values[0])  # warm-up: this template's code paths in the server
                new = [s for s in (change(page, name, value) for value in values[1:]) if s]
                fresh_context, fresh = open_configurator(browser, base, template_id)
                seen = [s for s in (change(fresh, name, value) for value in values[1:]) if s]
                fresh_context.close()
                in_page = [s for s in (change(page, name, value) for value in values[:-1]) if s]
                context.close()
                results[template_id] = {"new": new, "seen": seen, "in_page": in_page}
                print(f"{template_id}: {name.removeprefix('params.')} over {len(values) - 1} values", flush=True)
                print(row("new configuration", new, TARGET_NEW_MS))
                print(row("seen before (server)", seen, TARGET_SEEN_MS))
                print(row("seen in this page", in_page, TARGET_SEEN_MS), flush=True)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

    print("\nAll templates, ms from the change to the new mesh drawn (change event; typing adds the 300 ms debounce):")
    for kind, label, target in (("new", "new configuration", TARGET_NEW_MS),
                                ("seen", "seen before (server)", TARGET_SEEN_MS),
                                ("in_page", "seen in this page", TARGET_SEEN_MS)):
        print(row(label, [s for r in results.values() for s in r[kind]], target))
    misses = [template_id for template_id, r in results.items()
              if r["new"] and percentile([s["ms"] for s in r["new"]], 95) >= TARGET_NEW_MS]
    print(f"templates whose new-configuration p95 misses {TARGET_NEW_MS} ms: {', '.join(misses) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
