"""Training parts (as open_clip_train beside open_clip): the knowledge encoder and the image–text model, their
data, evaluation and the Ray job entry point. The library part (encoders, losses, captions, serving) is models/."""
