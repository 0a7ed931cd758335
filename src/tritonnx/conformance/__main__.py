"""`python -m tritonnx.conformance`: see `tritonnx.conformance.runner`."""

import sys

from tritonnx.conformance.runner import main

sys.exit(main())
