"""Multi-object trackers over boxes (numpy): ByteTrack and BoT-SORT (camera-motion compensated) in
``byte_tracker``, a Kalman filter, the optimal assignment, settings by name or tracker YAML, and identity
metrics (IDF1, ID switches). Applying them to detections of videos, streams and image sequences:
:mod:`utils.detection.tracking`."""
