"""KD Studio's engine: data, models, losses, training, jobs, storage — no Streamlit here.

Importing ``kdcore`` is cheap: TensorFlow is imported only when a model is
built or trained, so the dashboard's first screen does not wait for it.
"""
__version__ = "0.1.0"
