# -*- coding: utf-8 -*-
# The connection options every plinth.metal module takes.
from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  url:
    description:
      - The controller's address, e.g. C(https://plinth.example.net:7708).
      - Defaults to the C(PLINTH_URL) environment variable.
    type: str
  token:
    description:
      - An API token of the controller (operator role to change machines; reader to read).
      - Defaults to the C(PLINTH_TOKEN) environment variable. Never logged.
    type: str
  validate_certs:
    description: Verify the controller's TLS certificate.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of a private CA that signed the controller's certificate.
      - Defaults to the C(PLINTH_CA_BUNDLE) environment variable.
    type: path
  timeout:
    description: Seconds to wait for each answer of the controller.
    type: int
    default: 30
"""

    # The machine a module works on (extends_documentation_fragment: plinth.metal.plinth.machine).
    MACHINE = r"""
options:
  name:
    description: The machine (its name in Plinth, or its id).
    type: str
    required: true
"""
