"""``python -m skclusterfit``: the command line (see ``skclusterfit --help``)."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
