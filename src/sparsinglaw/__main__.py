import sys

from sparsinglaw.cli import main

sys.exit(main())
