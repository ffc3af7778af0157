"""Orders: reading and placing them once per idempotency key (``placing``), quotes, and generating their
files in the background (``generation``)."""
