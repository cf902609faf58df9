"""The console scripts: ``fewshot-train`` and ``fewshot-export`` (Paddle), ``fewshot-predict`` (no Paddle).

Paddle warns at import about ccache (for compiling custom operators, which fewshot never does) and
setuptools about distutils; a command's user sees neither.
"""

import warnings

warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
warnings.filterwarnings("ignore", message="Setuptools is replacing distutils", category=UserWarning)
