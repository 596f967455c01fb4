"""Audio: remember a speech recording as time-stamped transcript segments, then search them.

    .venv/bin/python examples/03_audio.py [MEMORY_DIR]

Speech: ``audio/whisper/jfk.flac`` from the shared data folder when present, else a sentence spoken
by espeak-ng when it is installed, else the example says so and stops. Offline: faster-whisper
tiny.en for speech, all-MiniLM-L6-v2 for text.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import omnimem
from omnimem.data import data_dir

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "audio"

shared = data_dir() and data_dir() / "audio" / "whisper" / "jfk.flac"
if shared and shared.is_file():
    speech, query = shared, "what you can do for your country"
elif shutil.which("espeak-ng"):
    speech = Path(tempfile.mkdtemp()) / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-s", "140", "-w", str(speech), "The library opens at nine every morning."], check=True
    )
    query = "when does the library open"
else:
    print("skipped: no speech to use (no shared data folder and espeak-ng is not installed)")
    sys.exit(0)

with omnimem.Memory.open(path) as mem:
    ids = mem.add_audio(speech)
    print(f"{speech.name}: {len(ids)} transcript segment(s)")
    for item in (mem.get(i) for i in ids):
        print(f"  [{item.t_start:.1f}-{item.t_end:.1f} s] {item.text}")
    hit = mem.search(query, k=1)[0]
    print(f"{query!r} -> [{hit.t_start:.1f}-{hit.t_end:.1f} s] {hit.text}")
