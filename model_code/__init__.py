"""SAIL-Embedding: one omni-modal encoder for text, images, video frames and audio."""
