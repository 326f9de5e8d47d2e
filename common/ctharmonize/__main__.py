import sys

from ctharmonize.cli import main

sys.exit(main())
