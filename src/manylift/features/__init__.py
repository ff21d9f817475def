"""Exposure history (recency, treatment stock, bins), activity bins, holdout split."""

from manylift.features.exposure import ExposureFeatures, FeatureArrays, exposure_history
from manylift.features.holdout import holdout_split

__all__ = ["ExposureFeatures", "FeatureArrays", "exposure_history", "holdout_split"]
