"""Run inside a single-user image next to its running Jupyter server: what a user
does first. Saves a file (the contents service emits a jupyter-events event,
validated against its schema), runs code in a new kernel, types a command in a
new terminal. Prints one line per step; exits non-zero on the first failure.

usage: python3 lab_session.py BASE_URL TOKEN [KERNEL_NAME]
"""

import json
import sys
import urllib.request
import uuid

import websocket  # websocket-client, a dependency of jupyter_server

base, token = sys.argv[1].rstrip("/"), sys.argv[2]
kernel_name = sys.argv[3] if len(sys.argv) > 3 else None
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
auth = {"Authorization": f"token {token}"}
TIMEOUT = 60


def rest(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=auth)
    with opener.open(req, timeout=TIMEOUT) as answer:
        return answer.status, json.load(answer)


def socket(path):
    return websocket.create_connection(base.replace("http", "ws", 1) + path, header=auth, timeout=TIMEOUT)


status, model = rest("PUT", "/api/contents/session-check.txt", {"type": "file", "format": "text", "content": "hi"})
assert status == 201 and model["path"] == "session-check.txt", (status, model)
print("saved a file")

status, kernel = rest("POST", "/api/kernels", {"name": kernel_name} if kernel_name else {})
assert status == 201, (status, kernel)
ws = socket(f"/api/kernels/{kernel['id']}/channels")
msg_id = uuid.uuid4().hex
header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "", "session": msg_id, "version": "5.3"}
content = {"code": "print(6 * 7)", "silent": False, "store_history": False, "user_expressions": {}}
ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell"}))
while True:
    msg = json.loads(ws.recv())
    if msg.get("parent_header", {}).get("msg_id") != msg_id:
        continue
    if msg["msg_type"] == "stream":
        assert msg["content"]["text"].strip() == "42", msg
        break
    assert msg["msg_type"] not in {"error", "execute_reply"}, msg
ws.close()
print(f"kernel {kernel['name']} ran code")

status, terminal = rest("POST", "/api/terminals")
assert status == 200, (status, terminal)
ws = socket(f"/terminals/websocket/{terminal['name']}")
ws.send(json.dumps(["stdin", "echo $((6 * 7))-$(id -u)\r"]))
seen = ""
while "42-1000" not in seen:
    kind, *payload = json.loads(ws.recv())
    if kind == "stdout":
        seen += payload[0]
ws.close()
print("terminal ran a command")
