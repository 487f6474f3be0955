"""Lift stage: 2D keypoint sequences to root-relative 3D keypoints in the camera frame."""
