"""Training objectives, one per file, listed by :data:`OBJECTIVES` (see ``base.py`` for the contract).

* ``vbert`` (:mod:`.vbert`): vMLM + vNSP pre-training on sequences;
* ``distill`` (:mod:`.distill`): n-to-1 distillation on pairs;
* ``membership`` (:mod:`.membership`): membership contrastive terms on long sequences;
* ``query-document`` (:mod:`.query_document`): query→document retrieval on documents with queries.
"""

from .base import OBJECTIVES, Objective, ObjectiveOptions, step_generator
from .distill import DistillObjective, DistillOptions, chunk_contrastive_loss, distill_loss
from .vbert import VBertObjective, VBertOptions

__all__ = [
    "OBJECTIVES",
    "DistillObjective",
    "DistillOptions",
    "Objective",
    "ObjectiveOptions",
    "VBertObjective",
    "VBertOptions",
    "chunk_contrastive_loss",
    "distill_loss",
    "step_generator",
]
