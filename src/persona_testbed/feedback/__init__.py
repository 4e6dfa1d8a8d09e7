"""Direct Principle Feedback: rejected -> critique -> chosen pairs per persona, validation, exports."""

from .export import FORMATS, export_pairs, trl_row
from .generate import FeedbackConfig, FeedbackResult, agenerate_pairs
from .io import read_pairs, write_pairs
from .leakage import PairLeakage, check_pair, find_leakage
from .plan import PairCounts, plan_pairs
from .record import PairValidation, PreferencePair
from .stats import feedback_stats
from .templates import TEMPLATE_VERSION

__all__ = [
    "PreferencePair",
    "PairValidation",
    "PairCounts",
    "FeedbackConfig",
    "FeedbackResult",
    "agenerate_pairs",
    "plan_pairs",
    "read_pairs",
    "write_pairs",
    "export_pairs",
    "trl_row",
    "FORMATS",
    "feedback_stats",
    "TEMPLATE_VERSION",
    "check_pair",
    "find_leakage",
    "PairLeakage",
]
