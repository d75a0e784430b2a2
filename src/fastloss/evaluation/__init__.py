"""Offline evaluation: readers, the streaming accumulator and the evaluator behind fastloss.evaluate."""
