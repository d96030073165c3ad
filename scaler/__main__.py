import sys

from scaler.main import main

sys.exit(main())
