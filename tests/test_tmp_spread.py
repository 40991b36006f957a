import numpy as np, pytest, torch
def test_spread(tiny_checkpoint, tiny_onnx, tiny_images):
    from barseg.infer.torch_runtime import TorchPredictor
    from barseg.infer.onnx_runtime import OnnxPredictor
    p = TorchPredictor(tiny_checkpoint); q = OnnxPredictor(tiny_onnx, threads=1)
    for _, img in tiny_images[:3]:
        a = p.raw([img], 0.05)[0]; b = q.raw([img], 0.05)[0]
        print(len(a.scores), len(b.scores))
        print(np.round(a.scores[:12], 4)); print(np.round(b.scores[:12], 4))
        print(a.boxes[:3].round(1).tolist()); print(b.boxes[:3].round(1).tolist())
