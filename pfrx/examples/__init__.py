"""The guide's FileSystem domain, ported to pfrx and runnable.

- `pfrx.examples.filesystem`: intents, ``FileCap``, the file context, the sandboxed
  ``FileStream`` processor, windows, adaptive backpressure, the composed pipeline, the
  transformer and the filter.
- `pfrx.examples.eventstore`: an append-only SQLite event store (WAL mode).
- `pfrx.examples.patterns`: ``EventSourcingStream``, ``CQRSStream``, ``AnalyticsStream``.

``docs/guide-mapping.md`` maps every code sample of the guide to its counterpart here.
"""
