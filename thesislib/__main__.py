"""``python -m thesislib`` is the ``thesislib`` command line."""

from thesislib.cli import main

raise SystemExit(main())
