import sys

from bl_reservoir.cli import main

sys.exit(main())
