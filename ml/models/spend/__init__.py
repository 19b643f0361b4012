"""Next-month spend: what will a customer be billed in the next 30 days? (regression)"""

from ml.models.spend.spec import SPEC

__all__ = ["SPEC"]
