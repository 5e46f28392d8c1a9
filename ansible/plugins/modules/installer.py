#!/usr/bin/python
# -*- coding: utf-8 -*-
# Hold a Plinth machine in the installer (or rescue) for work over SSH, and let it go.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: installer
short_description: Hold a machine in Plinth's installer (or rescue) for work over SSH, and exit it
description:
  - With I(state=held), boots the machine into Plinth's live installer (I(mode=installer), Plinth's
    C(boot-installer)) or into rescue (I(mode=rescue)) with an SSH server that lets in only
    I(ssh_public_key), and waits until the installer reports its address, port and host keys.
  - The installer's host keys are made at each boot; the module returns them as C(known_hosts)
    lines, so the playbook can pin them instead of turning host key checking off.
  - With I(state=absent), leaves the installer, to the installed OS (I(exit_to=deployed), the machine
    boots from its disk) or back to the state it was in (I(exit_to=previous)), and waits for it.
  - Idempotent. A machine already held with the key is not booted again; a machine not held is not
    exited. In check mode nothing is asked of the controller but reads.
version_added: 0.2.0
author:
  - Plinth contributors
extends_documentation_fragment:
  - plinth.metal.plinth
  - plinth.metal.plinth.machine
options:
  state:
    description: C(held) to boot into and stay in the installer, C(absent) to leave it.
    type: str
    choices: [held, absent]
    default: held
  mode:
    description:
      - C(installer) for automation that installs the OS itself (the disks are the playbook's);
        C(rescue) to repair a machine, its disks left alone.
    type: str
    choices: [installer, rescue]
    default: installer
  ssh_public_key:
    description:
      - The public key the installer's SSH server lets in (one line of an C(authorized_keys) file).
      - Required with I(state=held).
    type: str
  wait:
    description:
      - With I(state=held), wait until the installer reports its SSH server (address, port, host keys).
      - With I(state=absent), wait until the machine has left (C(deployed) or back where it was).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait, at most.
    type: int
    default: 1200
  exit_to:
    description:
      - Where I(state=absent) sends the machine. C(deployed) boots the OS the automation installed;
        C(previous) goes back to the state before the hold (C(available) or C(deployed)).
      - Defaults to C(deployed) in mode C(installer) and C(previous) in mode C(rescue) (a rescue
        always goes back).
    type: str
    choices: [deployed, previous]
  installed_host_keys:
    description:
      - With I(state=absent) and I(exit_to=deployed), the installed OS's SSH host public keys, as the
        playbook wrote them into it. Plinth keeps them with the machine (C(deployment.hostKeys)) and
        the module returns them as C(installed_known_hosts) lines, so the installed OS is pinned too.
    type: list
    elements: str
  ssh_check:
    description:
      - After leaving for the installed OS, also wait until an SSH server answers there (its
        C(SSH-2.0-…) banner) on I(ssh_check_host):I(ssh_check_port).
    type: bool
    default: false
  ssh_check_host:
    description: Where the installed OS answers SSH. Default the installer's address (the same NIC, or the lab's same forward), else the deployed address.
    type: str
  ssh_check_port:
    description: The port of I(ssh_check_host). Default the installer's SSH port, else 22.
    type: int
"""

EXAMPLES = r"""
- name: Boot rack-a1 into the installer with this playbook's key
  plinth.metal.installer:
    name: rack-a1
    ssh_public_key: "{{ lookup('file', playbook_dir + '/id_ed25519.pub') }}"
  register: held

- name: Reach the installer with its host key pinned
  ansible.builtin.add_host:
    name: rack-a1-installer
    ansible_host: "{{ held.address }}"
    ansible_port: "{{ held.port }}"
    ansible_user: root
    ansible_ssh_common_args: >-
      -o UserKnownHostsFile={{ known_hosts_file }} -o StrictHostKeyChecking=yes

- name: The OS is written; boot it and wait for its SSH server
  plinth.metal.installer:
    name: rack-a1
    state: absent
    exit_to: deployed
    ssh_check: true

- name: Rescue a deployed machine, then put it back untouched
  plinth.metal.installer:
    name: web-07
    mode: rescue
    ssh_public_key: "{{ lookup('file', '~/.ssh/id_ed25519.pub') }}"
"""

RETURN = r"""
state:
  description: The machine's provision state when the module finished.
  type: str
  returned: always
  sample: installer
address:
  description: Where the installer's SSH server is reached (null until it reported, or after an exit).
  type: str
  returned: always
  sample: 192.0.2.40
port:
  description: The installer's SSH port.
  type: int
  returned: always
  sample: 22
user:
  description: The user to log in as.
  type: str
  returned: always
  sample: root
host_keys:
  description: The SSH host keys the installer made at this boot.
  type: list
  elements: str
  returned: always
known_hosts:
  description: C(known_hosts) lines pinning those keys at that address and port.
  type: list
  elements: str
  returned: always
  sample: ["[192.0.2.40]:2222 ssh-ed25519 AAAAC3Nz..."]
run:
  description: Plinth's run holding the installer.
  type: str
  returned: when held
installed_known_hosts:
  description:
    - C(known_hosts) lines pinning I(installed_host_keys) (or the host keys Plinth already has for the
      installed OS) where it is reached (I(ssh_check_host) and port, else the installer's address and
      port, else the deployed address).
  type: list
  elements: str
  returned: with state=absent and exit_to=deployed
  sample: ["[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nz..."]
ssh_banner:
  description: What the installed OS's SSH server said (I(ssh_check)).
  type: str
  returned: when ssh_check ran
  sample: SSH-2.0-OpenSSH_9.2p1 Debian-2
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.plinth.metal.plugins.module_utils.plinth import (
    PlinthClient,
    PlinthError,
    plinth_argument_spec,
    ssh_banner,
    wait_until,
)

HELD = {"installer": ("installer-booting", "installer"), "rescue": ("rescue-booting", "rescue")}
FAILED = {"installer": "installer-failed", "rescue": "rescue-failed"}
EXITING = {"installer": ("installer-exiting",), "rescue": ()}
START = {"installer": "boot-installer", "rescue": "rescue"}
EXIT = {"installer": "exit-installer", "rescue": "exit-rescue"}


def known_hosts_line(host, port, key):
    """A known_hosts line: C(host type blob) on port 22, C([host]:port type blob) elsewhere (the comment left out)."""
    name = host if int(port) == 22 else "[%s]:%s" % (host, port)
    return "%s %s" % (name, " ".join(key.split()[:2]))


def access_result(access):
    return dict(
        address=access.get("address"),
        port=access.get("port"),
        user=access.get("user", "root"),
        host_keys=access.get("hostKeys", []),
        known_hosts=access.get("knownHosts", []),
        run=access.get("run"),
    )


def empty_access():
    return dict(address=None, port=None, user="root", host_keys=[], known_hosts=[])


def failure(m):
    err = m.get("lastError") or {}
    return "machine %s is %s: %s" % (m["name"], m["state"], err.get("message") or "no reason given")


def hold(module, client, m, result):
    p = module.params
    mode = p["mode"]
    key = (p["ssh_public_key"] or "").strip()
    if not key:
        module.fail_json(msg="ssh_public_key is required with state=held", **result)
    if m["state"] in HELD[mode]:
        access = client.installer(m["name"])
        run = client.request("GET", "/api/v1/runs/%s" % access["run"])
        if key not in (run.get("params") or {}).get("authorizedKeys", []):
            module.fail_json(msg="machine %s is already held in %s with other keys; exit it first" % (m["name"], mode), **result)
        result.update(access_result(access))
    else:
        result["changed"] = True
        if module.check_mode:
            result.update(empty_access())
            result["state"] = HELD[mode][0]
            return
        r = client.act(m["name"], START[mode], {"sshKeys": [key]})
        result["run"] = r["run"]["id"]
        result["state"] = r["machine"]["state"]
    if not p["wait"]:
        access = client.installer(m["name"])
        result.update(access_result(access))
        result["state"] = access["state"]
        return

    def reported():
        try:
            access = client.installer(m["name"])
        except PlinthError as e:
            if e.status != 409:
                raise
            now = client.machine(m["name"])
            if now["state"] == FAILED[mode] or now["state"] not in HELD[mode]:
                module.fail_json(msg=failure(now), **result)
            return None
        return access if access.get("address") else None

    access = wait_until(reported, p["wait_timeout"])
    if access is None:
        now = client.machine(m["name"])
        module.fail_json(msg="machine %s is %s: the installer did not report its SSH server within %ss" % (m["name"], now["state"], p["wait_timeout"]), **result)
    result.update(access_result(access))
    result["state"] = access["state"]


def release(module, client, m, result):
    p = module.params
    mode = p["mode"]
    exit_to = p["exit_to"] or ("deployed" if mode == "installer" else "previous")
    if mode == "rescue" and exit_to == "deployed":
        module.fail_json(msg="exit_to: a rescue always goes back to the previous state", **result)
    result.update(empty_access())
    before = None
    if m["state"] in HELD[mode] or m["state"] == FAILED[mode]:
        result["changed"] = True
        if m["state"] in HELD[mode]:
            try:
                before = client.installer(m["name"])
            except PlinthError:
                before = None
        if module.check_mode:
            return
        body = {"to": exit_to} if mode == "installer" else {}
        if mode == "installer" and exit_to == "deployed" and p["installed_host_keys"]:
            body["hostKeys"] = p["installed_host_keys"]
        r = client.act(m["name"], EXIT[mode], body)
        result["state"] = r["machine"]["state"]
    elif m["state"] not in EXITING[mode]:
        return
    if not p["wait"]:
        return

    def settled():
        now = client.machine(m["name"])
        if now["state"] in EXITING[mode]:
            return None
        return now

    now = wait_until(settled, p["wait_timeout"])
    if now is None:
        module.fail_json(msg="machine %s did not leave the installer within %ss" % (m["name"], p["wait_timeout"]), **result)
    result["state"] = now["state"]
    if now["state"] == FAILED[mode]:
        module.fail_json(msg=failure(now), **result)
    deployment = now.get("deployment") or {}
    host = p["ssh_check_host"] or (before or {}).get("address") or deployment.get("address")
    port = p["ssh_check_port"] or (before or {}).get("port") or 22
    if exit_to == "deployed" and now["state"] == "deployed":
        keys = deployment.get("hostKeys") or p["installed_host_keys"] or []
        result["installed_known_hosts"] = [known_hosts_line(host, port, k) for k in keys] if host else []
    if p["ssh_check"] and now["state"] == "deployed":
        if not host:
            module.fail_json(msg="ssh_check: no address known for machine %s: set ssh_check_host" % m["name"], **result)
        banner = wait_until(lambda: ssh_banner(host, port, 5), p["wait_timeout"], interval=3)
        if banner is None:
            module.fail_json(msg="ssh_check: nothing answered SSH at %s port %s within %ss" % (host, port, p["wait_timeout"]), **result)
        result["ssh_banner"] = banner


def main():
    module = AnsibleModule(
        argument_spec=plinth_argument_spec(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["held", "absent"], default="held"),
            mode=dict(type="str", choices=["installer", "rescue"], default="installer"),
            ssh_public_key=dict(type="str"),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=1200),
            exit_to=dict(type="str", choices=["deployed", "previous"]),
            installed_host_keys=dict(type="list", elements="str", no_log=False),
            ssh_check=dict(type="bool", default=False),
            ssh_check_host=dict(type="str"),
            ssh_check_port=dict(type="int"),
        ),
        required_if=[("state", "held", ("ssh_public_key",))],
        supports_check_mode=True,
    )
    client = PlinthClient(module)
    result = dict(changed=False, machine=module.params["name"])
    try:
        m = client.machine(module.params["name"])
        result["machine"] = m["name"]
        result["state"] = m["state"]
        if module.params["state"] == "held":
            hold(module, client, m, result)
        else:
            release(module, client, m, result)
    except PlinthError as e:
        module.fail_json(msg=str(e), status=e.status, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
