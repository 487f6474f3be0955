"""``python -m backend``: see backend/cli.py.

The process ends with ``os._exit`` once ``main`` has returned and the streams are flushed: the
interpreter's own shutdown (torch, MediaPipe and warp tear-down) takes about two seconds and does
nothing this process needs, and a cancelled run must exit within one second (DESIGN.md).
"""

import logging
import os
import sys

from backend.cli import main

code = main()
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
