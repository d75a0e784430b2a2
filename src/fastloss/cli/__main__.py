"""``python -m fastloss.cli``: the same as the ``fastloss`` console script."""

import sys

from fastloss.cli import main

if __name__ == "__main__":  # importing the module (doc tools, pkgutil walks) runs nothing
    sys.exit(main())
