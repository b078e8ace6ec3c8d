import sys

from waterdrop.cli import main

sys.exit(main())
