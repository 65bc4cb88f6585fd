"""`python -m mdr ...` (and `torchrun ... -m mdr train ...`): the `mdr` command."""

import sys

from mdr.cli import main

sys.exit(main())
