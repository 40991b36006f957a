"""Export the trained model: ONNX (with a parity check) and TensorRT engines."""
