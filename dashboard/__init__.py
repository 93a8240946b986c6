"""The Streamlit app: thin pages over pose_core (run with `streamlit run dashboard/app.py`)."""
