"""Training: losses shared by the models (and, later, the training loop).

- :mod:`seldbench.training.losses`: the ADPIT MSE loss of every multi-ACCDOA model
  (docs/models.md, "Losses"), the core default loss for ``output="multi_accdoa"``.
"""
