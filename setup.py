"""Build script: maps kernels/ to fastloss.kernels.

The Cython extensions (added by the Cython backend) are optional: with no compiler
the install still succeeds and the NumPy / Numba backends serve.
"""

from setuptools import setup

setup(
    package_dir={"fastloss": "src/fastloss", "fastloss.kernels": "kernels"},
    packages=[
        "fastloss",
        "fastloss.kernels",
        "fastloss.kernels.reference",
        "fastloss.kernels.numba",
        "fastloss.kernels.cython",
    ],
)
