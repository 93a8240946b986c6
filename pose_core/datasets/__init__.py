"""Penn Action reading, labelling and export, the real clips' labels, and training the exercise recogniser
(the runtime recogniser itself is `pose_core.recognition`)."""
