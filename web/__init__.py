"""The web front end (Flask); it builds on the core library and is never imported by it."""
