"""Penn Action reading, labelling and export, and exercise recognition (features, model, training)."""
