"""``python -m fmnist``: see :mod:`fmnist.cli`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter off the terminal

from fmnist.cli import main

sys.exit(main())
