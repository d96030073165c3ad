"""``python -m app.api``: the same as ``tide api``."""

import sys

from app.api.main import main

sys.exit(main())
