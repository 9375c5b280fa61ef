"""`python -m rfm` is the same as the `rfm` console script."""

import sys

from rfm.cli import main

sys.exit(main())
