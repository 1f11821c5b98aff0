import sys

from bulkimport.cli import main

sys.exit(main())
