"""The 3D-aware plug-in: multiview-consistency loss and the detector adapter."""

from mvface.plugin.adapter import CropBatch, DetectorAdapter
from mvface.plugin.loss import MultiviewLossConfig, multiview_losses

__all__ = ["CropBatch", "DetectorAdapter", "MultiviewLossConfig", "multiview_losses"]
