"""`distill predict`: a student (or any model) at work on photos, folders, videos and cameras."""
