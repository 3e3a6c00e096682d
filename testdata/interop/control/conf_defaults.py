# Writes worker/control/celery55_defaults.json: the reply of `inspect conf
# with_defaults=True` of a bare celery app (run with scripts/celery55.sh
# python3 testdata/interop/control/conf_defaults.py > worker/control/celery55_defaults.json).
import json, sys
from celery import Celery
from celery.utils.serialization import jsonify
from celery.worker.control import _wanted_config_key
from celery.utils.saferepr import saferepr
app = Celery()
t = jsonify(app.conf.table(with_defaults=True), keyfilter=_wanted_config_key, unknown_type_filter=saferepr)
# Infinity (result_backend_max_retries) is written 1e999: the same float
# for Python's json.loads, and a JSON number Go can carry.
sys.stdout.write(json.dumps(t, indent=1, sort_keys=True).replace(': Infinity', ': 1e999'))
