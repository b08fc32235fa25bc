"""`python -m rewarm` (also what `torchrun -m rewarm` runs)."""

import sys

from rewarm.cli import main

if __name__ == "__main__":
    sys.exit(main())
