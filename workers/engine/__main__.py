"""`python -m workers.engine`: the engine's command line."""

import sys

from workers.engine.cli import main

sys.exit(main())
