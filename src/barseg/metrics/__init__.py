"""Detection and segmentation metrics: COCO AP (pycocotools), matching, barcode-specific IoU."""
