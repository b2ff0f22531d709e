"""Data: dataset roots and checks, label encoders, video frames, the synthetic generator."""
