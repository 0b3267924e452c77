"""glasses.evaluation: how well and how fast, over folders of cases.

Speech (`asr.py`: word error rate and latency per engine), look and tell (`look.py`:
answers scored by accepted words), routing (`routing.py`: which skill each request goes
to), their case files (`cases.py`) and scoring (`scoring.py`). It may use `models`,
`pipelines` and `device`; `export` and `simulator` use it, not the other way round.
"""
