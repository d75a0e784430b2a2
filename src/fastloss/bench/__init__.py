"""The benchmark runner behind ``fastloss bench``."""
