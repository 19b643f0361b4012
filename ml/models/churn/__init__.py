"""Customer churn: will a customer leave within the next month? (binary classification)"""

from ml.models.churn.spec import SPEC

__all__ = ["SPEC"]
