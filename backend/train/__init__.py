"""Training of the shipped models on ``../shared/mocap``: the pose prior and the temporal lifter.

Data attribution (kept next to the weights in ``backend/weights/NOTICE``): CMU Graphics Lab Motion
Capture Database (mocap.cs.cmu.edu, NSF EIA-0196217), HDM05 (Müller et al. 2007, CC BY-SA 3.0) and
the Animated Drawings examples (MIT, Meta Platforms, Inc. and affiliates).
"""
