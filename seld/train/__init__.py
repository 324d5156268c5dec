"""The training engine every stage shares (:mod:`seld.train.engine`) and its parts: the ``train:``
config, optimiser and schedule, weight average, data loading, DDP, stopping and TensorBoard."""
