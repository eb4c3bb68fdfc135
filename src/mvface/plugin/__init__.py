"""The 3D-aware plug-in: multiview-consistency loss and the detector adapter."""

from mvface.plugin.loss import MultiviewLossConfig, multiview_losses

__all__ = ["MultiviewLossConfig", "multiview_losses"]
