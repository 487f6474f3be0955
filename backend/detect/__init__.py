"""2D detection (MediaPipe) and person tracking."""
