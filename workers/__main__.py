"""``python -m workers``: the same as ``tide worker``."""

import sys

from workers.main import main

sys.exit(main())
