"""GymPose core library: pose estimation, angles, exercise rules, rep counting, video analysis.

No Streamlit in here: the dashboard and the command line are thin layers over this package.
"""

__version__ = "0.1.0"
