import os
import sys

from workers.main import main

code = main()
# A sync task's thread cannot be stopped, and the interpreter would wait for it at exit: once
# the worker is done (drained, or crashed), leave without waiting.
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
