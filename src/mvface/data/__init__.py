"""Face data: image loading, the landmark scheme, one record type and the dataset readers."""

from mvface.data.record import FaceSample

__all__ = ["FaceSample"]
