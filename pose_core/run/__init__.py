"""The runners: one video file (pipeline), the live camera (live), many videos or Penn Action (batch)."""
