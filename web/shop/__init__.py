"""The shop: its pages (``views``, the ``shop`` blueprint), the catalog with from-prices, the configurator's
forms built from each template's parameter model, and the live preview."""
