# -*- coding: utf-8 -*-
# HTTP to a Plinth controller, shared by the plinth.metal modules.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import time

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.six.moves.urllib.parse import quote
from ansible.module_utils.urls import open_url


def plinth_argument_spec(**extra):
    """The connection options (doc fragment plinth.metal.plinth) and the module's own."""
    spec = dict(
        url=dict(type="str", fallback=(env_fallback, ["PLINTH_URL"])),
        token=dict(type="str", no_log=True, fallback=(env_fallback, ["PLINTH_TOKEN"])),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path", fallback=(env_fallback, ["PLINTH_CA_BUNDLE"])),
        timeout=dict(type="int", default=30),
    )
    spec.update(extra)
    return spec


class PlinthError(Exception):
    """A refused request: the HTTP status and the controller's own message."""

    def __init__(self, method, path, status, message):
        super(PlinthError, self).__init__("plinth: %s %s failed: HTTP %s: %s" % (method, path, status, message))
        self.status = status
        self.message = message


class PlinthClient(object):
    """Plinth's REST API with a bearer token; errors carry the controller's message."""

    def __init__(self, module):
        self.module = module
        p = module.params
        if not p.get("url"):
            module.fail_json(msg="plinth: no controller address: set url or PLINTH_URL")
        if not p.get("token"):
            module.fail_json(msg="plinth: no API token: set token or PLINTH_TOKEN")
        self.base = p["url"].rstrip("/")
        self.token = p["token"]

    def request(self, method, path, body=None):
        headers = {"Authorization": "Bearer %s" % self.token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        p = self.module.params
        try:
            response = open_url(
                self.base + path,
                method=method,
                data=data,
                headers=headers,
                validate_certs=p["validate_certs"],
                ca_path=p.get("ca_path"),
                timeout=p["timeout"],
            )
            text = response.read()
            return json.loads(text) if text else None
        except HTTPError as e:
            message = to_native(e.reason)
            try:
                message = json.loads(e.read())["error"]["message"]
            except Exception:
                pass
            raise PlinthError(method, path, e.code, message)
        except Exception as e:
            raise PlinthError(method, path, "-", to_native(e))

    def machine(self, name):
        return self.request("GET", "/api/v1/machines/%s" % quote(name, safe=""))

    def installer(self, name):
        return self.request("GET", "/api/v1/machines/%s/installer" % quote(name, safe=""))

    def act(self, name, action, body):
        return self.request("POST", "/api/v1/machines/%s/actions/%s" % (quote(name, safe=""), action), body)


def ssh_banner(host, port, timeout):
    """The first line an SSH server sends (C(SSH-2.0-…)), or None if nothing answers like one."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except (OSError, socket.error):
        return None
    try:
        s.settimeout(timeout)
        line = s.recv(256).split(b"\n")[0].strip()
        return to_native(line) if line.startswith(b"SSH-") else None
    except (OSError, socket.error):
        return None
    finally:
        s.close()


def wait_until(check, timeout, interval=2):
    """Calls check() until it returns something other than None, or the timeout passes (None)."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.time() >= deadline:
            return None
        time.sleep(min(interval, max(0.1, deadline - time.time())))
