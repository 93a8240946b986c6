"""Images in and out: the pose estimator (the only MediaPipe import), video decode/encode, drawing."""
