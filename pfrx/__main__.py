"""``python -m pfrx``: see `pfrx.cli`."""

from .cli import main

raise SystemExit(main())
