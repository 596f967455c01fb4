"""Chat with memory across sessions: tell the agent something on Monday, ask about it on Wednesday.

    .venv/bin/python examples/06_chat_memory.py [MEMORY_DIR]

The chat agent (``omnimem.agents.chat``) recalls the working buffer, session summaries, facts and
search hits, answers with the packaged SmolLM2 on llama.cpp citing ``[E1]``-style evidence, and
writes both turns back to memory. Each day is a new session (and checkpoint thread) of the same user.
"""

import sys
import tempfile
from pathlib import Path

import omnimem
from omnimem.agents.chat import ChatConfig, build_chat_agent, chat
from omnimem.vlm import create_generator

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "chat"

with omnimem.Memory.open(path) as mem:
    app = build_chat_agent(mem, create_generator("smollm2"), config=ChatConfig(max_new_tokens=48, budget_tokens=768))
    days = [
        ("2024-05-06T09:00:00", "My sister Maya lives in Lisbon and she has a cat called Pixel."),
        ("2024-05-08T18:30:00", "What is the name of Maya's cat?"),
    ]
    for when, message in days:
        state = chat(app, "alice", message, timestamp=when)
        print(f"[{state['session']}] alice: {message}")
        print(f"[{state['session']}] assistant: {state['answer']}")
        for citation in state["citations"]:
            item = citation["item"]
            text = mem.get(item).text if not item.startswith("session:") else "(a session summary)"
            print(f"   [{citation['id']}] -> {text}")
    recalled = mem.search("Maya's cat", k=1, sessions=["alice/2024-05-06"], speakers=["alice"])[0]
    print(f"earlier session's fact in memory: {recalled.text}")
