"""fmnist-studio core: data, models, training, evaluation and preprocessing, with no Streamlit."""
