"""Long-video QA: build a narrated video, remember it, and ask the video QA agent about it.

    .venv/bin/python examples/04_video_qa.py [MEMORY_DIR]

The video (24 s, five coloured scenes, narration by espeak-ng) is generated here; without espeak-ng
the example says so and stops. The agent (``omnimem.agents.video_qa``) retrieves coarse to fine,
answers with the packaged SmolLM2 on llama.cpp and prints ``[HH:MM:SS-HH:MM:SS]`` timestamps.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

import omnimem
from omnimem.agents.video_qa import VideoQAConfig, ask_video, build_video_qa_agent
from omnimem.encoders.media import load_audio
from omnimem.vlm import create_generator

if not shutil.which("espeak-ng"):
    print("skipped: espeak-ng is not installed (apt-get install espeak-ng) to narrate the video")
    sys.exit(0)
path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "video"
work = Path(tempfile.mkdtemp())

# 1. the video: scenes switch at 0, 5, 11, 16.5, 21 s; narration from 1 s
wav = work / "narration.wav"
narration = "A red balloon floats over the harbour at noon."
subprocess.run(["espeak-ng", "-s", "140", "-w", str(wav), narration], check=True)
audio = np.concatenate([np.zeros(16000, np.float32), load_audio(wav), np.zeros(16000 * 24, np.float32)])[: 16000 * 24]
video = work / "harbour.mp4"
scenes = [
    (0.0, (220, 30, 30)),
    (5.0, (30, 200, 40)),
    (11.0, (20, 40, 220)),
    (16.5, (90, 90, 90)),
    (21.0, (240, 220, 20)),
]
with av.open(str(video), "w") as out:
    stream = out.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
    sound = out.add_stream("aac", rate=16000, layout="mono")
    for n in range(240):
        colour = [c for start, c in scenes if start <= n / 10][-1]
        frame = np.full((64, 96, 3), colour, np.uint8)
        out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    out.mux(stream.encode())
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    for i in range(0, pcm.size, 1024):
        chunk = av.AudioFrame.from_ndarray(pcm[None, i : i + 1024], format="s16", layout="mono")
        chunk.sample_rate, chunk.pts = 16000, i
        out.mux(sound.encode(chunk))
    out.mux(sound.encode())

# 2. memory + agent: the first question ingests the video, later ones reuse its memory
config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(segment_s=6.0))
with omnimem.Memory.open(path, config=config) as mem:
    app = build_video_qa_agent(mem, create_generator("smollm2"), config=VideoQAConfig(max_new_tokens=48))
    steps: list[str] = []
    for question in ["What floats over the harbour?", "When is the balloon over the harbour?"]:
        steps.clear()
        state = ask_video(app, question, video=str(video), on_step=lambda node, _: steps.append(node))
        print(f"Q: {question}")
        print(f"   steps: {' -> '.join(steps)} (rounds: {state['round']})")
        print(f"A: {state['answer']}")
        for span in state["timestamps"]:
            print(f"   evidence at {span[0]:.1f}-{span[1]:.1f} s")
