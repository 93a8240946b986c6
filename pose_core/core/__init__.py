"""The pure core: landmarks, angles, exercise rules, smoothing and rep counting; never sees an image."""
