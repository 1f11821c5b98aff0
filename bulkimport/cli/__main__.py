"""`python -m bulkimport.cli`."""

import sys

from bulkimport.cli import main

if __name__ == "__main__":
    sys.exit(main())
