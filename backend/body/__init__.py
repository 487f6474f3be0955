"""Body models behind one canonical (SMPL-X joint order) pose interface."""
