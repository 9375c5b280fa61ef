"""K-Means segmentation on the RFM table: choosing k, training, naming, profiles, versioned models.

The public API the CLI, the model server and the dashboard build on (see docs/ARCHITECTURE.md, "Segmentation model").
Never imports streamlit or a web framework, and importing it does not import scikit-learn (about
1.4 s): loading a saved model and scoring do not need it, training imports it when it runs.
"""

from rfm.model.metadata import (
    Centroid,
    ClusterInfo,
    ModelMetadata,
    ModelMetrics,
    PredictorBlock,
    RowCounts,
    VersionSummary,
)
from rfm.model.naming import FOUR_NAMES, NOT_SEGMENTED, NOT_SEGMENTED_NAME
from rfm.model.pipeline import FEATURES, TrainingData, build_pipeline, training_data
from rfm.model.profiles import RevenueConcentration, revenue_concentration, segment_profiles
from rfm.model.segment_model import Cluster, SegmentModel
from rfm.model.store import ModelStore, load_model_dir, sha256_file
from rfm.model.sweep import KMetrics, SweepResult, sweep
from rfm.model.train import train_model

__all__ = [
    "FEATURES",
    "FOUR_NAMES",
    "NOT_SEGMENTED",
    "NOT_SEGMENTED_NAME",
    "Centroid",
    "Cluster",
    "ClusterInfo",
    "KMetrics",
    "ModelMetadata",
    "ModelMetrics",
    "ModelStore",
    "PredictorBlock",
    "RevenueConcentration",
    "RowCounts",
    "SegmentModel",
    "SweepResult",
    "TrainingData",
    "VersionSummary",
    "build_pipeline",
    "load_model_dir",
    "revenue_concentration",
    "segment_profiles",
    "sha256_file",
    "sweep",
    "train_model",
    "training_data",
]
