"""``python -m pfrx``: see :mod:`pfrx.cli`."""

from .cli import main

raise SystemExit(main())
