"""What differs per model kind, as :class:`painterly.training.loop.Objective` subclasses.

:mod:`.feedforward` (multi-style network), :mod:`.adain` (AdaIN decoder) and :mod:`.meta` (meta network),
the last two on :mod:`.arbitrary` (what the arbitrary-style trainers share); :mod:`.distill` and
:mod:`.distill_adain` (slimmer students of a trained model).
"""
