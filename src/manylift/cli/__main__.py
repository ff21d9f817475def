import sys

from manylift.cli.main import main

sys.exit(main())
