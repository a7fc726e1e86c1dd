# The real/py workload (issue 14): import a scientific stack, say READY, then load three arrays.
import numpy, scipy, scipy.linalg, scipy.sparse, pandas  # noqa: E401,F401

print("READY", flush=True)
import numpy as np  # noqa: E402

total = sum(float(np.load(f"/data/a{i}.npy").sum()) for i in range(3))
print(f"sum {total:.3f}", flush=True)
print("DONE", flush=True)
