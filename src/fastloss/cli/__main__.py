"""``python -m fastloss.cli``: the same as the ``fastloss`` console script."""

import sys

from fastloss.cli import main

sys.exit(main())
