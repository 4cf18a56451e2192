"""Writing rollout videos: a GIF (Pillow) and an H.264 MP4 (PyAV, FFmpeg's libraries in
its wheel) of the same frames, and panels side by side (``experiments.render --sweep``)."""
import fractions

import av
import numpy as np
from PIL import Image
from PIL import ImageDraw


def side_by_side(panels: list[list[np.ndarray]], labels: list[str]) -> list[np.ndarray]:
  """One frame per step: the panels' frames left to right, each labelled at its top."""
  out = []
  for step in zip(*panels):
    image = Image.fromarray(np.concatenate(step, axis=1))
    draw = ImageDraw.Draw(image)
    width = step[0].shape[1]
    for i, label in enumerate(labels):
      draw.text((i * width + 4, 2), label, fill=(255, 255, 255))
    out.append(np.asarray(image))
  return out


def write_gif(images: list[np.ndarray], path: str, fps: float) -> None:
  pil = [Image.fromarray(f) for f in images]
  pil[0].save(path, save_all=True, append_images=pil[1:], loop=0,
              duration=int(round(1000 / fps)))


def write_mp4(images: list[np.ndarray], path: str, fps: float) -> None:
  """H.264 (yuv420p, which needs even sizes: an odd last row or column is dropped)."""
  height, width = (images[0].shape[0] // 2) * 2, (images[0].shape[1] // 2) * 2
  with av.open(path, mode="w") as container:
    stream = container.add_stream("libx264", rate=fractions.Fraction(fps).limit_denominator(1000))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for image in images:
      frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]),
                                         format="rgb24")
      container.mux(stream.encode(frame))
    container.mux(stream.encode())
