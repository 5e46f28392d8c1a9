#!/usr/bin/python
# -*- coding: utf-8 -*-
# Read a Plinth machine: state, identity, a summary of its facts, where its installed OS is.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: machine_info
short_description: Read a machine of Plinth
description:
  - Reads one machine from a Plinth controller (C(GET /api/v1/machines/{name})), with its provision state,
    identity, tags and owner, a summary of its inspected facts, the installed OS's address and, when it
    is held in the installer or rescue, how to reach that over SSH.
  - Changes nothing; runs in check mode too.
version_added: 0.2.0
author:
  - Plinth contributors
extends_documentation_fragment:
  - plinth.metal.plinth
  - plinth.metal.plinth.machine
"""

EXAMPLES = r"""
- name: Where is rack-a1 now
  plinth.metal.machine_info:
    name: rack-a1
  register: info

- name: Wait until it is deployed
  plinth.metal.machine_info:
    name: rack-a1
  register: info
  until: info.state == 'deployed'
  retries: 60
  delay: 10
"""

RETURN = r"""
state:
  description: The provision state.
  type: str
  returned: always
  sample: deployed
installed_address:
  description: The address the installed OS reported in with (null before a deploy or for an OS installed from outside that never reported).
  type: str
  returned: always
  sample: 192.0.2.25
facts_summary:
  description: The inspected facts in brief (null before an inspection).
  type: dict
  returned: always
  contains:
    serial: {description: SMBIOS serial number, type: str}
    manufacturer: {description: SMBIOS manufacturer, type: str}
    product: {description: SMBIOS product name, type: str}
    cpu_model: {description: CPU model, type: str}
    cores: {description: physical cores, type: int}
    memory_bytes: {description: memory, type: int}
    disks: {description: "disks: name and size in bytes", type: list, elements: dict}
    macs: {description: MAC addresses of the NICs, type: list, elements: str}
    boot_mode: {description: C(uefi) or C(bios), type: str}
installer:
  description: How to reach the installer or rescue the machine is held in (address, port, hostKeys, knownHosts), else null.
  type: dict
  returned: always
machine:
  description: The machine record as the controller answers it (facts included).
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.plinth.metal.plugins.module_utils.plinth import PlinthClient, PlinthError, plinth_argument_spec

HELD = ("installer-booting", "installer", "rescue-booting", "rescue")


def summary(facts):
    if not facts:
        return None
    system = facts.get("system") or {}
    cpu = facts.get("cpu") or {}
    return dict(
        serial=system.get("serial"),
        manufacturer=system.get("manufacturer"),
        product=system.get("productName"),
        cpu_model=cpu.get("model"),
        cores=cpu.get("cores"),
        memory_bytes=(facts.get("memory") or {}).get("totalBytes"),
        disks=[dict(name=d.get("name"), size_bytes=d.get("sizeBytes")) for d in facts.get("disks") or []],
        macs=[n.get("mac") for n in facts.get("nics") or []],
        boot_mode=(facts.get("firmware") or {}).get("bootMode"),
    )


def main():
    module = AnsibleModule(argument_spec=plinth_argument_spec(name=dict(type="str", required=True)), supports_check_mode=True)
    client = PlinthClient(module)
    try:
        m = client.machine(module.params["name"])
        installer = client.installer(m["name"]) if m["state"] in HELD else None
    except PlinthError as e:
        module.fail_json(msg=str(e), status=e.status)
    module.exit_json(
        changed=False,
        state=m["state"],
        installed_address=(m.get("deployment") or {}).get("address"),
        facts_summary=summary(m.get("facts")),
        installer=installer,
        machine=m,
    )


if __name__ == "__main__":
    main()
