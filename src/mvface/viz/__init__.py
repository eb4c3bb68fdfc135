"""Pictures people look at: landmark overlays and comparison figures."""
