"""One of pyo's processes in bench/scaling.sh's peer runs (pyo's multi-process recipe): an
offline pyo Server rendering its share of the voices.
    python3 scaling_pyo_part.py VOICES DURATION OUT.wav PART"""
import random, sys
from pyo import Server, SineLoop
voices, dur, out, part = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = Server(sr=48000, nchnls=2, buffersize=256, duplex=0, audio="offline").boot()
s.recordOptions(dur=dur, filename=out, fileformat=0, sampletype=3)
rng = random.Random(1000 + part)
voices_alive = SineLoop(freq=[rng.uniform(400, 800) for _ in range(voices)], feedback=0.1, mul=0.005).out()
s.start()
