"""faceforge.forge — the attacker: data preparation, the few-shot talking-head GAN, corpora.

Data flows one way: videos -> ``forge prepare`` (faces, landmarks, cache) ->
``forge train`` / ``fit`` / ``animate`` / ``corpus``.
"""

__version__ = "0.1.0"
