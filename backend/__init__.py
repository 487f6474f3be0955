"""Video-to-motion estimation backend (bpy-free).

Run it as ``python -m backend estimate VIDEO --out OUT.motion.npz``.
"""

__version__ = "0.1.0"
