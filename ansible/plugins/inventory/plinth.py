# -*- coding: utf-8 -*-
# Plinth's machines as an Ansible inventory.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: plinth
short_description: Plinth's machines as an inventory
description:
  - Reads the machines of a Plinth controller through its REST API (C(GET /api/v1/machines)).
  - Each machine is a host named after the machine. Hosts are grouped by provision state
    (C(state_deployed)), matched profile (C(profile_compute)), tag (C(tag_rack_a) for C(rack=a),
    C(tag_gpu) for a tag without value) and owner (C(owner_ci)). Group names keep only letters,
    digits and underscores.
  - Host variables carry the machine's identity, tags, owner, facts, the profile's pool
    variables and, for a deployed machine, its installed address as C(ansible_host) and, when
    its SSH host keys are known, C(plinth_known_hosts) lines pinning them there; a machine
    held in the installer or rescue has C(plinth_installer) (address, port, host keys and
    C(known_hosts) lines pinning them).
  - The inventory file must end in C(plinth.yml) or C(plinth.yaml).
version_added: 0.1.0
author:
  - Plinth contributors
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: Marks the file as this plugin's.
    required: true
    choices: ['plinth.metal.plinth']
  url:
    description: The controller's address, e.g. C(https://plinth.example.net:7708).
    type: str
    required: true
    env:
      - name: PLINTH_URL
  token:
    description: An API token (reader role is enough).
    type: str
    required: true
    env:
      - name: PLINTH_TOKEN
  validate_certs:
    description: Verify the controller's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: PEM file of a private CA that signed the controller's certificate.
    type: path
    env:
      - name: PLINTH_CA_BUNDLE
  states:
    description: Only machines in these provision states (all when empty).
    type: list
    elements: str
    default: []
  tags:
    description: Only machines with all these tags (C(key) or C(key=value)).
    type: list
    elements: str
    default: []
  owner:
    description: Only machines allocated to this owner.
    type: str
  with_facts:
    description: Fetch each machine's facts as C(plinth_facts) (larger answers).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer of the controller.
    type: int
    default: 30
"""

EXAMPLES = r"""
# plinth.yml — every machine; PLINTH_URL and PLINTH_TOKEN from the environment
plugin: plinth.metal.plinth

# plinth.yml — deployed machines of one owner, with a group per rack from a tag
plugin: plinth.metal.plinth
url: https://plinth.example.net:7708
states: [deployed]
owner: ci
keyed_groups:
  - key: plinth_tags.rack | default('none')
    prefix: rack
"""

import json
import re

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible.module_utils.urls import open_url
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable

PAGE = 500
HELD = ("installer-booting", "installer", "rescue-booting", "rescue")


def group_name(prefix, *parts):
    """A group name Ansible accepts: letters, digits and underscores."""
    raw = "_".join([prefix] + [p for p in parts if p])
    return re.sub(r"[^A-Za-z0-9_]", "_", raw)


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "plinth.metal.plinth"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(("plinth.yml", "plinth.yaml"))

    def _get(self, path, query):
        url = "%s%s?%s" % (self.get_option("url").rstrip("/"), path, urlencode(query, doseq=True))
        try:
            response = open_url(
                url,
                headers={"Authorization": "Bearer %s" % self.get_option("token"), "Accept": "application/json"},
                validate_certs=self.get_option("validate_certs"),
                ca_path=self.get_option("ca_path"),
                timeout=self.get_option("timeout"),
            )
            return json.loads(response.read())
        except Exception as e:
            body = getattr(e, "read", None)
            detail = ""
            if body is not None:
                try:
                    detail = ": " + json.loads(body())["error"]["message"]
                except Exception:
                    pass
            raise AnsibleError("plinth: GET %s failed: %s%s" % (path, to_native(e), detail))

    def _installer(self, name):
        """How to reach the installer a machine is held in: address, port, host keys, known_hosts lines."""
        try:
            a = self._get("/api/v1/machines/%s/installer" % quote(name, safe=""), {})
        except AnsibleError:
            # It left the installer between the list and this read.
            return None
        return {"address": a.get("address"), "port": a.get("port"), "user": a.get("user"), "host_keys": a.get("hostKeys", []), "known_hosts": a.get("knownHosts", [])}

    def _machines(self):
        query = {"limit": PAGE}
        if self.get_option("with_facts"):
            query["include"] = "facts"
        if self.get_option("states"):
            query["state"] = self.get_option("states")
        if self.get_option("tags"):
            query["tag"] = self.get_option("tags")
        if self.get_option("owner"):
            query["owner"] = self.get_option("owner")
        cursor = None
        while True:
            if cursor:
                query["cursor"] = cursor
            page = self._get("/api/v1/machines", query)
            for m in page.get("items", []):
                yield m
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def _add(self, m):
        host = self.inventory.add_host(m["name"])
        match = m.get("match") or {}
        deployment = m.get("deployment") or {}
        hostvars = {
            "plinth_id": m["id"],
            "plinth_state": m["state"],
            "plinth_owner": m.get("owner"),
            "plinth_tags": m.get("tags") or {},
            "plinth_identity": m.get("identity") or {},
            "plinth_maintenance": m.get("maintenance", False),
            "plinth_profile": match.get("profile"),
            "plinth_vars": match.get("vars") or {},
            "plinth_deployment": deployment,
        }
        if "facts" in m:
            hostvars["plinth_facts"] = m.get("facts")
        if deployment.get("address"):
            hostvars["ansible_host"] = deployment["address"]
            # The installed OS's host keys, as the automation that installed it gave them: pinned at its address.
            hostvars["plinth_known_hosts"] = ["%s %s" % (deployment["address"], " ".join(k.split()[:2])) for k in deployment.get("hostKeys") or []]
        if m["state"] in HELD:
            hostvars["plinth_installer"] = self._installer(m["name"])
        for k, v in hostvars.items():
            self.inventory.set_variable(host, k, v)

        groups = [group_name("state", m["state"])]
        if match.get("profile"):
            groups.append(group_name("profile", match["profile"]))
        if m.get("owner"):
            groups.append(group_name("owner", m["owner"]))
        for k, v in sorted((m.get("tags") or {}).items()):
            groups.append(group_name("tag", k, v))
        for g in groups:
            self.inventory.add_group(g)
            self.inventory.add_child(g, host)

        strict = self.get_option("strict")
        self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if not self.get_option("url"):
            raise AnsibleError("plinth: no controller address: set url in %s or PLINTH_URL" % path)
        if not self.get_option("token"):
            raise AnsibleError("plinth: no API token: set token in %s or PLINTH_TOKEN" % path)
        for m in self._machines():
            self._add(m)
