"""Task priorities, higher first: both huey storages (SQLite, Redis) hand out the waiting task of the highest
priority first, first in first out within one priority.

The quoted lead time of an order counts the tasks waiting at the order render's priority or above
(``web.orders.quotes``).
"""

from __future__ import annotations

PRIORITY: dict[str, int] = {
    "housekeeping": 1000,  # only under huey's plain consumer; ours runs it in processes of its own
    "preview": 300,        # a customer is looking at the configurator
    "quote": 250,          # a customer is waiting for a price
    "plates": 200,         # a customer who bought the files waits on a page for their own printer's plates:
                           # seconds of slicing, after the pre-sale previews and quotes, before order renders
    "render": 100,         # an order's files
    "catalog": 50,         # the shop front's from-prices and pictures
    "manufacturing": 10,   # slicing and toolpaths for jobs
}

KIND_OF_PRIORITY: dict[int, str] = {value: kind for kind, value in PRIORITY.items()}
