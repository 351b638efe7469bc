"""redis-py against sipdir's Redis port, for redis_py_test.ts.

Reads a JSON request on stdin: {"port", "password" (or null), "keys", "pipeline"};
prints one JSON object with what redis-py returned. Values are bytes in
redis-py (decode_responses=False): they are printed base64-encoded, so that
the test compares bytes; None stays null. Errors are printed as
[exception class, message].
"""

import base64
import json
import sys

import redis


def encode(value):
    """A reply as JSON: bytes as base64, lists element by element."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def failure(fn):
    """What fn raises, as [class, message]; None if it does not."""
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - reported to the test
        return [type(error).__name__, str(error)]
    return None


def main():
    request = json.load(sys.stdin)
    port, password = request["port"], request["password"]
    keys, pipeline_keys = request["keys"], request["pipeline"]
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=10)
    result = {
        "version": redis.__version__,
        "parser": type(client.connection_pool.make_connection()._parser).__name__,
        "ping": client.ping(),
        "get": [encode(client.get(key)) for key in keys],
        "mget": encode(client.mget(keys)),
        "exists": client.exists(*keys),
        "dbsize": client.dbsize(),
    }
    # The default pipeline is a transaction: MULTI, the commands, EXEC.
    pipe = client.pipeline()
    for key in pipeline_keys:
        pipe.get(key)
    pipe.mget(keys[:4])
    pipe.exists(*keys[:4])
    result["pipeline"] = encode(pipe.execute())
    plain = client.pipeline(transaction=False)
    for key in pipeline_keys:
        plain.get(key)
    result["plain_pipeline"] = encode(plain.execute())
    if password is not None:
        wrong = redis.Redis(host="127.0.0.1", port=port, password="wrong", socket_timeout=10)
        result["wrong_password"] = failure(wrong.ping)
        none = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
        result["no_password"] = failure(lambda: none.get(keys[0]))
    client.close()
    json.dump(result, sys.stdout)


main()
