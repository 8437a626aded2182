"""``python -m kdcore``: see :mod:`kdcore.cli`."""
from .cli import main

raise SystemExit(main())
