"""Mergeable, serializable sketch state with identical verbs."""

from .categorical import Categorical
from .histogram import Histogram
from .moments import Moments
from .performance import BinaryPerformance
from .tdigest import TDigest
from .profile import ColumnProfile, Profile
from .reference import profile
from .multiclass import MulticlassPerformance
from .regression import RegressionPerformance

__all__ = ["BinaryPerformance", "Histogram", "Moments", "Categorical", "TDigest", "Profile", "ColumnProfile", "profile",
           "MulticlassPerformance", "RegressionPerformance"]
