"""One price for an order of several lines: each line's material and machine time, and the setup fee of
each process once per order, not once per line.

A line's quote (``web.orders.quotes.price``) is priced as if it were ordered alone, setup included.
:func:`order_price` takes the quotes of an order's lines and charges each process's setup fee on
the first line made by that process, so the lines' totals add up to the order's total and the
confirmation and the tracking page can show each line's share as it was charged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PENDING = "pending"
FINAL = "final"


def _money(value: float) -> float:
    return round(value + 1e-9, 2)


def line_processes(quoted: Mapping[str, Any]) -> list[str]:
    """The processes a line's parts are made by, in the order its parts list them."""
    seen: list[str] = []
    for part in quoted["parts"]:
        if part["process"] not in seen:
            seen.append(part["process"])
    return seen


def order_price(quotes: Sequence[Mapping[str, Any]], setup_fees: Mapping[str, Any]) -> dict[str, Any]:
    """The order's price from its lines' quotes and the setup fee of each process (``SETUP_FEE``).

    Returns ``{"currency", "material", "machine", "setup", "setup_by_process", "total", "lines"}``;
    ``lines[i]`` is line ``i``'s own price: its material and machine cost, the setup fees charged on it
    (``setup_processes``: the processes first used on this line) and its total."""
    charged: set[str] = set()
    lines, by_process = [], {}
    currency = quotes[0]["price"]["currency"] if quotes else ""
    for quoted in quotes:
        own = [process for process in line_processes(quoted) if process not in charged]
        charged.update(own)
        setup = 0.0
        for process in own:
            fee = float(setup_fees[process])
            by_process[process] = _money(fee)
            setup += fee
        material, machine = float(quoted["price"]["material"]), float(quoted["price"]["machine"])
        # the line's own quoted total (rounded once, from unrounded costs) with its setup fee as charged here: the
        # figure the configurator showed, not a cent off from adding the rounded material and machine costs again
        own_setup = float(quoted["price"].get("setup", 0.0))
        total = float(quoted["price"].get("total", material + machine + own_setup)) - own_setup + setup
        lines.append({"currency": quoted["price"]["currency"], "material": _money(material),
                      "machine": _money(machine), "setup": _money(setup), "setup_processes": own,
                      "unit": quoted["price"]["unit"], "total": _money(total)})
    return {"currency": currency, "material": _money(sum(line["material"] for line in lines)),
            "machine": _money(sum(line["machine"] for line in lines)),
            "setup": _money(sum(by_process.values())), "setup_by_process": by_process,
            "total": _money(sum(line["total"] for line in lines)), "lines": lines}


def charged(record: Mapping[str, Any], share: Mapping[str, Any]) -> dict[str, Any]:
    """An item's quote record with the price it was charged in its order (setup fees once per order)."""
    return {**record, "price": {**record["price"], "setup": share["setup"], "total": share["total"],
                                "setup_processes": share["setup_processes"]}}


def charged_records(records: Sequence[Mapping[str, Any]], setup_fees: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The quote records of an order's lines (``web.orders.quotes.quote_record``), each with the price it is charged
    in the order (:func:`order_price`): what the shop's checkout and an API order store with their items."""
    summary = order_price(records, setup_fees)
    return [charged(record, share) for record, share in zip(records, summary["lines"], strict=True)]


def order_total(records: Sequence[Mapping[str, Any] | None],
                missing: Mapping[int, str] | None = None) -> dict[str, Any]:
    """The order's total from the charged quote records its items keep (:func:`charged_records`), in order of
    position: what the API, the confirmation and the tracking page all show.

    ``{"state": "final", "currency", "material", "machine", "setup", "total", "lines": [{"position", "material",
    "machine", "setup", "setup_processes", "total"}]}``; while a line has no price yet ``{"state": "pending",
    "currency": None, "total": None, "missing": [{"position", "reason"}], "lines": [...the priced ones]}``, never
    a partial sum. ``missing`` gives a line's reason by position (default: its price is being worked out)."""
    lines, unpriced = [], []
    for position, record in enumerate(records, start=1):
        if record is None:
            reason = (missing or {}).get(position, "its price is being worked out")
            unpriced.append({"position": position, "reason": reason})
            continue
        price = record["price"]
        lines.append({"position": position, "currency": price["currency"], "material": _money(price["material"]),
                      "machine": _money(price["machine"]), "setup": _money(price["setup"]),
                      "setup_processes": list(price.get("setup_processes", [])), "total": _money(price["total"])})
    if unpriced or not lines:
        return {"state": PENDING, "currency": None, "total": None, "missing": unpriced, "lines": lines}
    return {"state": FINAL, "currency": lines[0]["currency"],
            "material": _money(sum(line["material"] for line in lines)),
            "machine": _money(sum(line["machine"] for line in lines)),
            "setup": _money(sum(line["setup"] for line in lines)),
            "total": _money(sum(line["total"] for line in lines)), "lines": lines}
