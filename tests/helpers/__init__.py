"""What more than one test module needs, in one place: builders of events, launch specs and
report parts (`builders`), Hypothesis strategies (`strategies`), the HTTP error shape and key
headers (`http`), the service run for a test (`live`), and the reference computation of every
report number (`reference`). Test modules import from here, never from each other; the
benchmarks may import from here too."""
