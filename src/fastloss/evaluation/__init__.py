"""Offline evaluation: one streaming, resumable, exact pass over a prediction dump.

The public surface is :func:`evaluate`, :class:`EvalResult`, :class:`LossAccumulator` and
:class:`ExactSums`; the modules are the implementation, one responsibility each:
``readers`` (file formats), ``roles`` (which column is what; the layout), ``chunks``
(lockstep reading), ``exact`` and ``accumulator`` (exact streaming sums), ``state``
(everything summed, with its merge), ``keyed_sums`` (per-class / per-group sums),
``diagnostics`` (checks), ``evaluator`` (the per-chunk steps), ``result`` (the document)
and ``driver`` (checkpoint, resume, interrupt, progress).
"""

from fastloss.evaluation.accumulator import LossAccumulator
from fastloss.evaluation.driver import evaluate
from fastloss.evaluation.exact import ExactSums
from fastloss.evaluation.result import EvalResult

__all__ = ["EvalResult", "ExactSums", "LossAccumulator", "evaluate"]
