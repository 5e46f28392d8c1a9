import type { BuiltinKind } from '../kinds.js';

/**
 * Ubuntu Server autoinstall (subiquity), served as a NoCloud seed: `user-data` carries the
 * `autoinstall:` section, `meta-data` names the instance. Strings go through `json`: a JSON
 * string is a valid YAML scalar whatever it contains.
 */

const USER_DATA = `#cloud-config
# Plinth: Ubuntu autoinstall for {{ machine.name | line }} (run {{ run.id | line }}).
autoinstall:
  version: 1
{% include 'localization' -%}
{% include 'mirror' -%}
{% include 'network' -%}
{% include 'users' -%}
{% include 'ssh-keys' -%}
{% include 'storage' -%}
{% include 'packages' -%}
{% include 'late-commands' -%}
`;

const META_DATA = `# Plinth: instance data of {{ machine.name | line }} for the Ubuntu installer.
instance-id: {{ run.id | yaml }}
local-hostname: {{ hostname | yaml }}
`;

const LOCALIZATION = `  locale: {{ os.locale | yaml }}
  keyboard:
    layout: {{ os.keyboard | yaml }}
  timezone: {{ os.timezone | yaml }}
`;

// Without a mirror, subiquity picks Ubuntu's archive (or a country mirror) itself.
const MIRROR = `{% if os.mirror -%}
  apt:
    primary:
      - arches: [default]
        uri: {{ os.mirror | yaml }}
{% endif -%}
`;

// Netplan, applied by the installer and kept by the installed system. Every NIC is matched by
// MAC and keeps the name it had when inspected; NICs other than the primary must not hold up
// booting.
const NETWORK = `  network:
    version: 2
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
        routes:
          - to: default
            via: {{ nic.static.gateway | yaml }}
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

// subiquity requires a password hash for the first user; "!" is one that matches no password,
// so the account is reached with SSH keys only (and sudo is opened in late-commands).
const USERS = `  identity:
    hostname: {{ hostname | yaml }}
    username: {{ os.user | yaml }}
    realname: ""
    password: "!"
`;

const SSH_KEYS = `  ssh:
    install-server: true
    allow-pw: false
    authorized-keys: {{ ssh.authorizedKeys | yaml }}
`;

// The chosen disk by its serial when it reported one (udev's ID_SERIAL ends with it), else by
// its name: sda and sdb may swap between boots, serials do not.
const STORAGE = `  storage:
    layout:
      name: direct
{% if disk -%}
      match:
{% if disk.serial -%}
        serial: {{ '*' | append: disk.serial | yaml }}
{% else -%}
        path: {{ disk.path | yaml }}
{% endif -%}
{% endif -%}
`;

const PACKAGES = `{% if os.packages.size > 0 -%}
  packages: {{ os.packages | yaml }}
{% endif -%}
`;

// kernelArgs reach the installed system through a GRUB drop-in (Ubuntu's grub-mkconfig reads
// /etc/default/grub.d/*.cfg) and a fresh grub.cfg.
const LATE_COMMANDS = `  late-commands:
    - |
      echo {{ os.user | append: ' ALL=(ALL) NOPASSWD:ALL' | shell_quote }} > /target/etc/sudoers.d/90-plinth
      chmod 0440 /target/etc/sudoers.d/90-plinth
{% if ssh.rootLogin -%}
    - |
      mkdir -p /target/root/.ssh
      printf '%s\\n' {{ ssh.authorizedKeys | shell_quote }} > /target/root/.ssh/authorized_keys
      chmod 0700 /target/root/.ssh
      chmod 0600 /target/root/.ssh/authorized_keys
{% endif -%}
{% if os.kernelArgs != '' -%}
    - |
      mkdir -p /target/etc/default/grub.d
      echo {{ 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX ' | append: os.kernelArgs | append: '"' | shell_quote }} > /target/etc/default/grub.d/90-plinth-kernel-args.cfg
      curtin in-target --target=/target -- update-grub
{% endif -%}
{% include 'report-completion' -%}
`;

// The installer's own curl. A failed report must not abort the installation (any failing
// late command does); the controller's deadline notices instead.
// curl retries refused connections, timeouts and 5xx answers; not --retry-all-errors, which the
// curl of older installers (RHEL 8, Ubuntu 20.04) does not know.
const REPORT_COMPLETION = `    - |
      curl -fsS --max-time 30 --retry 60 --retry-delay 10 --retry-connrefused -X POST \\
        -H {{ 'Authorization: Bearer ' | append: token | shell_quote }} -H 'Content-Type: application/json' \\
        --data '{"event":"installed","source":"autoinstall"}' {{ controller.phoneHomeUrl | shell_quote }} \\
        || echo "Plinth: could not report to the controller" >&2
`;

export const AUTOINSTALL_TEMPLATES: BuiltinKind = {
  templates: {
    'user-data': { contentType: 'text/cloud-config; charset=utf-8', body: USER_DATA },
    'meta-data': { contentType: 'application/yaml; charset=utf-8', body: META_DATA },
  },
  snippets: {
    localization: LOCALIZATION,
    mirror: MIRROR,
    network: NETWORK,
    users: USERS,
    'ssh-keys': SSH_KEYS,
    storage: STORAGE,
    packages: PACKAGES,
    'late-commands': LATE_COMMANDS,
    'report-completion': REPORT_COMPLETION,
  },
  artifacts: ['user-data', 'meta-data'],
  main: 'user-data',
  defaultContentType: 'text/cloud-config; charset=utf-8',
};
