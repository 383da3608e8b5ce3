"""Write realistic DynamoDB change records as JSONL (see pools/samples.py).

python bench/records.py 100000 var/orders.jsonl [--seed 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pools.samples import main, make_records, write_jsonl  # noqa: E402

__all__ = ["make_records", "write_jsonl"]

if __name__ == "__main__":
    main()
