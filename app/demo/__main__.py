"""`python -m app.demo` (what `make demo` runs)."""

import sys

from app.demo import main

sys.exit(main())
