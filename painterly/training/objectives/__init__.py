"""What differs per model kind, as :class:`painterly.training.loop.Objective` subclasses."""
