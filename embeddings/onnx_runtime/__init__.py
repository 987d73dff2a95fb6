"""Serving with ONNX Runtime: the embedder, and the export from torch it is made by."""
