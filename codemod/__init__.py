"""chatterbox-codemod: safe LibCST codemods for PyTorch inference code."""

__version__ = "0.1.0"
