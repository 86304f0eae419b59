// Assembly-level attributes of the Vae.ML library.
