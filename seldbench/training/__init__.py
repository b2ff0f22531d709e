"""Training: losses shared by the models (and, later, the training loop).

- :mod:`seldbench.training.losses`: the ADPIT MSE loss of every multi-ACCDOA model
  (spec/models.md section 1), the core default loss for ``output="multi_accdoa"``.
"""
