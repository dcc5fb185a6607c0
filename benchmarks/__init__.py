"""pfrx benchmarks: ``make bench`` (``python -m benchmarks``)."""
