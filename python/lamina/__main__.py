"""`python -m lamina ...` is the `lamina` command (see lamina.cli)."""
import sys

from .cli import main

sys.exit(main())
