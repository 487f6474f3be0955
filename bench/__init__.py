"""Benchmarks against exact ground truth: ``python -m backend bench accuracy``.

Held-out mocap (test subjects only) poses the Anny body, which ``bpy`` renders to a video; the
whole estimate pipeline runs on that video and is scored against the known keypoints.
"""
