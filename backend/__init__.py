"""Video-to-motion estimation backend (bpy-free).

Run it as ``python -m backend estimate VIDEO --out OUT.motion.npz``.
"""

from backend.protocol import VERSION as __version__

__all__ = ["__version__"]
