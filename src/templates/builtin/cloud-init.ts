import type { BuiltinKind } from '../kinds.js';

/**
 * cloud-init NoCloud seed for image-based deploys: the agent writes it next to the image, and
 * the installed system configures itself from it on first boot, then reports in.
 * Strings go through `json`: a JSON string is a valid YAML scalar whatever it contains.
 */

const USER_DATA = `#cloud-config
# Plinth: first-boot configuration of {{ machine.name | line }} (run {{ run.id | line }}).
{% include 'hostname' -%}
{% include 'users' -%}
{% include 'packages' -%}
{% include 'report-completion' -%}
`;

const META_DATA = `# Plinth: instance data of {{ machine.name | line }}. A new run is a new instance: cloud-init runs its first-boot modules again.
instance-id: {{ run.id | yaml }}
local-hostname: {{ hostname | yaml }}
`;

const NETWORK_CONFIG = `# Plinth: network configuration of {{ machine.name | line }} (cloud-init network config version 2).
{% include 'network' -%}
`;

const HOSTNAME = `hostname: {{ hostname | yaml }}
{% if fqdn -%}
fqdn: {{ fqdn | yaml }}
{% endif -%}
prefer_fqdn_over_hostname: false
manage_etc_hosts: true
`;

// No passwords anywhere: the default user's is locked, so sudo must not ask for one. With
// disable_root false, cloud-init gives root the top-level ssh_authorized_keys as they are
// (there is no distribution default user here to receive them instead).
const USERS = `ssh_pwauth: false
users:
  - name: {{ os.user | yaml }}
    shell: /bin/bash
    lock_passwd: true
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    ssh_authorized_keys: {{ ssh.authorizedKeys | yaml }}
{% if ssh.rootLogin -%}
disable_root: false
ssh_authorized_keys: {{ ssh.authorizedKeys | yaml }}
{% else -%}
disable_root: true
{% endif -%}
`;

const PACKAGES = `{% if os.packages.size > 0 -%}
package_update: true
packages: {{ os.packages | yaml }}
{% endif -%}
`;

// runcmd runs late in the final stage, after users, keys and packages. Plinth's own images have
// no curl; python3 is always there because cloud-init itself is written in it.
const REPORT_COMPLETION = `write_files:
  - path: /var/lib/plinth/report-first-boot
    owner: root:root
    permissions: "0700"
    content: |
      #!/bin/sh
      # Plinth: tells the controller that {{ machine.name | line }} booted its installed system (run {{ run.id | line }}).
      # Retries for up to ten minutes, then gives up: the controller's deadline reports the failure.
      url={{ controller.phoneHomeUrl | shell_quote }}
      token={{ token | shell_quote }}
      body='{"event":"first-boot","source":"cloud-init"}'
      report() {
        if command -v curl >/dev/null 2>&1; then
          curl -fsS --max-time 30 -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' --data "$body" "$url"
        else
          python3 -c 'import sys, urllib.request
      request = urllib.request.Request(sys.argv[1], data=sys.argv[3].encode(), method="POST", headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
      urllib.request.urlopen(request, timeout=30).read()' "$url" "$token" "$body"
        fi
      }
      attempt=0
      while [ "$attempt" -lt 60 ]; do
        attempt=$((attempt + 1))
        if report; then
          rm -f "$0"
          exit 0
        fi
        sleep 10
      done
      echo "Plinth: could not report to $url" >&2
      exit 1
runcmd:
  - [/var/lib/plinth/report-first-boot]
`;

// Every NIC is matched by MAC and keeps the name it had when inspected. gateway4 rather than a
// default route: Debian 12's cloud-init renders to ifupdown, where routes become net-tools
// commands that minimal systems lack. NICs other than the primary must not hold up booting.
const NETWORK = `version: 2
{% if network.nics.size == 0 -%}
ethernets: {}
{% else -%}
ethernets:
{% for nic in network.nics -%}
  {{ nic.id | yaml }}:
    match:
      macaddress: {{ nic.mac | yaml }}
{% if nic.name -%}
    set-name: {{ nic.name | yaml }}
{% endif -%}
{% if nic.static -%}
    addresses: [{{ nic.static.cidr | yaml }}]
{% if nic.static.gateway -%}
    gateway4: {{ nic.static.gateway | yaml }}
{% endif -%}
{% if nic.static.dns.size > 0 or nic.static.search.size > 0 -%}
    nameservers:
      addresses: {{ nic.static.dns | yaml }}
      search: {{ nic.static.search | yaml }}
{% endif -%}
{% else -%}
    dhcp4: true
{% endif -%}
{% unless nic.primary -%}
    optional: true
{% endunless -%}
{% endfor -%}
{% endif -%}
`;

export const CLOUD_INIT_TEMPLATES: BuiltinKind = {
  templates: {
    'user-data': { contentType: 'text/cloud-config; charset=utf-8', body: USER_DATA },
    'meta-data': { contentType: 'application/yaml; charset=utf-8', body: META_DATA },
    'network-config': { contentType: 'application/yaml; charset=utf-8', body: NETWORK_CONFIG },
  },
  snippets: {
    hostname: HOSTNAME,
    users: USERS,
    packages: PACKAGES,
    'report-completion': REPORT_COMPLETION,
    network: NETWORK,
  },
  artifacts: ['user-data', 'meta-data', 'network-config'],
  main: 'user-data',
  defaultContentType: 'application/yaml; charset=utf-8',
};
