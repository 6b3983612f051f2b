"""`python -m bench`: runs every scenario (none yet; see bench/__init__.py)."""

import sys

sys.exit("no benchmark scenarios yet: they land with issue #7")
