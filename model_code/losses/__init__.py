"""Training losses: InfoNCE (+ Matryoshka, hard negatives), CoSENT, mICL, late fusion, anchor."""

from model_code.losses.anchor import anchor_loss
from model_code.losses.cosent import cosent
from model_code.losses.hard_negative import hard_negative_info_nce
from model_code.losses.infonce import candidate_info_nce, info_nce
from model_code.losses.late_fusion import LateFusionGate, late_fusion_loss
from model_code.losses.matryoshka import matryoshka
from model_code.losses.micl import micl
from model_code.losses.temperature import LearnableTemperature, TemperatureBank

__all__ = [
    "LateFusionGate",
    "LearnableTemperature",
    "TemperatureBank",
    "anchor_loss",
    "candidate_info_nce",
    "cosent",
    "hard_negative_info_nce",
    "info_nce",
    "late_fusion_loss",
    "matryoshka",
    "micl",
]
